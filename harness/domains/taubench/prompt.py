"""τ-bench's own user system prompt (`LLMUserSimulationEnv` / `ReactUserSimulationEnv`), verbatim."""

from __future__ import annotations

from harness.episode.user import UserStrategy

_LLM_RULES = """Rules:
- Just generate one line at a time to simulate the user's message.
- Do not give away all the instruction at once. Only provide the information that is necessary for the current step.
- Do not hallucinate information that is not provided in the instruction. For example, if the agent asks for the order id but it is not mentioned in the instruction, do not make up an order id, just say you do not remember or have it.
- If the instruction goal is satisified, generate '###STOP###' as a standalone message without anything else to end the conversation.
- Do not repeat the exact instruction in the conversation. Instead, use your own words to convey the same information.
- Try to make the conversation as natural as possible, and stick to the personalities in the instruction."""

_REACT_RULES = """Rules:
- First, generate a Thought about what to do next (this message will not be sent to the agent).
- Then, generate a one line User Response to simulate the user's message (this message will be sent to the agent).
- Do not give away all the instruction at once. Only provide the information that is necessary for the current step.
- Do not hallucinate information that is not provided in the instruction. For example, if the agent asks for the order id but it is not mentioned in the instruction, do not make up an order id, just say you do not remember or have it.
- If the instruction goal is satisified, generate '###STOP###' as the User Response without anything else to end the conversation.
- Do not repeat the exact instruction in the conversation. Instead, use your own words to convey the same information.
- Try to make the conversation as natural as possible, and stick to the personalities in the instruction.

Format:

Thought:
<the thought>

User Response:
<the user response (this will be parsed and sent to the agent)>"""


def taubench_user_prompt(instruction: str, strategy: UserStrategy = "llm") -> str:
    """τ-bench's own user system prompt (`LLMUserSimulationEnv` / `ReactUserSimulationEnv`)."""
    rules = _LLM_RULES if strategy == "llm" else _REACT_RULES
    return f"You are a user interacting with an agent.\n\nInstruction: {instruction}\n\n{rules}"
