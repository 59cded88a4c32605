"""Seeds per conversation, identical across variants so that variants are paired."""

from hashlib import blake2b


def conversation_seed(run_seed: int, env: str, task_id: int, trial: int) -> int:
    digest = blake2b(f"{run_seed}:{env}:{task_id}:{trial}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x3FFFFFFF
