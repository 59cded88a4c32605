"""A tiny random-weight Qwen2 chat model with a Hermes-style tool-calling template, built offline.

Its replies are nonsense; it exists so vLLM can load, batch, prefix-cache and serve a real model
on a CPU in seconds. Needs `transformers` and `tokenizers` (both come with vLLM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- else %}You are a helpful assistant.{%- endif %}
{{- '\\n\\n# Tools\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}
{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant' }}
{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
{%- for tool_call in message.tool_calls %}
{%- set call = tool_call.function if tool_call.function is defined else tool_call %}
{{- '\\n<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
{%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
THINK_TOKENS = ["<think>", "</think>"]
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
}
"""Both tiny models' shape: two layers 128 wide, float32, output weights tied to the embeddings."""

_CORPUS = [
    "You are a customer service agent that helps the user according to the policy.",
    "Hi! How can I help you today? I want to return an order and exchange an item.",
    "The user id is yusuf_rossi_9620 and the order id is #W2378156 for a t-shirt.",
    "Please find the user id by email or by name and zip code before any action.",
    'For each function call, return a json object {"name": "get_user_details", "arguments": {"user_id": "x"}}',
    "order cancelled pending delivered payment method gift card credit card paypal reservation flight",
    "airline retail product item variant price quantity address zip city state country",
    "###STOP### thank you goodbye yes no please confirm the details of the change",
]


def build_tiny_model(directory: Path, vocab_size: int = 1024, extra_text: list[str] | None = None) -> Path:
    """Write tokenizer, config and random weights into `directory` (created) and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*_CORPUS, *(extra_text or [])] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
    )
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    fast.add_tokens([*TOOL_TOKENS, *THINK_TOKENS])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(fast),
        **TINY_SHAPE,
        bos_token_id=None,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    (directory / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id})
    )
    return directory


def tiny_model(base: Path | None = None) -> Path:
    """The tiny model, built on first use into `base` (default: the system temp dir) and reused.

    The folder name carries a hash of this file, so a changed builder builds a fresh model.
    """
    import hashlib
    import shutil
    import tempfile

    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    directory = (base or Path(tempfile.gettempdir())) / f"tau-emotion-tiny-qwen2-{digest}"
    if not directory.is_dir():
        staging = Path(tempfile.mkdtemp(prefix="tiny-qwen2-", dir=directory.parent))
        build_tiny_model(staging)
        try:
            staging.rename(directory)
        except OSError:  # built meanwhile by another process
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def tiny_mistral_dir(base: Path | None = None) -> Path:
    """A Mistral-style model folder: mistral-common's own v3 tokenizer (the one of
    Mistral-Small-Instruct-2409, shipped with mistral-common) and a tiny Mistral config.

    Random weights (17 MB), so vLLM can also serve it: Mistral prompts rendered exactly as for
    the real model, replies read by the `mistral` tool parser.
    """
    import shutil
    import tempfile
    from importlib.resources import files

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    directory = (base or Path(tempfile.gettempdir())) / "tau-emotion-tiny-mistral-v3"
    if not (directory / "model.safetensors").is_file():
        directory.mkdir(parents=True, exist_ok=True)
        source = files("mistral_common") / "data" / "mistral_instruct_tokenizer_240323.model.v3"
        shutil.copyfile(str(source), directory / "tokenizer.model.v3")
        torch.manual_seed(0)
        config = MistralConfig(
            vocab_size=32768,
            **TINY_SHAPE,
            head_dim=64,
            sliding_window=None,
            bos_token_id=1,
            eos_token_id=2,
        )
        MistralForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    return directory


if __name__ == "__main__":
    import sys

    print(build_tiny_model(Path(sys.argv[1])) if len(sys.argv) > 1 else tiny_model())


def tiny_vllm_overrides(model_dir: Path, max_model_len: int = 16384) -> list[str]:
    """`backend=vllm` on the tiny CPU model: float32, eager, a small explicit KV cache.

    Chunked prefill is off: vLLM's CPU sampler cannot rewind a seeded generator after a partial
    prefill ("CPU Generator does not use offset"), so seeded requests must be prefilled whole.
    """
    return [
        "backend=vllm",
        "model=qwen2.5-7b",
        *_tiny_engine("model", "backend", model_dir, "tiny", max_model_len, kv_cache_bytes=268435456),
    ]


def tiny_vllm_user_overrides(model_dir: Path, kv_cache_bytes: int, max_model_len: int = 16384) -> list[str]:
    """The simulated user on a second tiny engine (`+user/backend=vllm`), set up as
    `tiny_vllm_overrides` sets up the agent's."""
    return [
        "+user/backend=vllm",
        *_tiny_engine(
            "user.backend.model", "user.backend", model_dir, "tiny-user", max_model_len, kv_cache_bytes
        ),
    ]


def _tiny_engine(
    model_key: str, backend_key: str, model_dir: Path, name: str, max_model_len: int, kv_cache_bytes: int
) -> list[str]:
    return [
        f"{model_key}.path={model_dir}",
        f"{model_key}.name={name}",
        f"{model_key}.dtype=float32",
        f"{model_key}.max_model_len={max_model_len}",
        f"++{backend_key}.kv_cache_memory_bytes={kv_cache_bytes}",
        f"++{backend_key}.enforce_eager=true",
        f"++{backend_key}.engine_kwargs={{enable_chunked_prefill:false,max_num_batched_tokens:{max_model_len}}}",
    ]
