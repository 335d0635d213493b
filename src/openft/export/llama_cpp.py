"""Greedy answers of llama.cpp for an exported GGUF file, through its `llama-simple` example program.

`llama-simple -m FILE -n N PROMPT` tokenizes PROMPT with special tokens parsed (the chat template's
`<|im_start|>` becomes one token), samples greedily, stops at an end-of-generation token, and prints
the prompt's tokens followed by the answer's. Given the conversation as the chat template writes it
(`render_prompt_text`), llama.cpp sees the same tokens as openft's engine. openft does not ship
llama.cpp: this runs a binary the user built (`OPENFT_LLAMA_CPP_BIN`), for tests and benchmarks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

LLAMA_CPP_BIN_ENV = "OPENFT_LLAMA_CPP_BIN"


class LlamaCppError(RuntimeError):
    """llama.cpp refused the file or failed; the message ends with its own last lines of output."""


def render_prompt_text(tokenizer: Any, prompt: str) -> str:
    """The one-user-message conversation as text, ready for the assistant's answer."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    return str(text)


def llama_cpp_answer(
    binary: Path, gguf_file: Path, prompt_text: str, max_tokens: int, *, timeout_s: float = 600
) -> str:
    """llama.cpp's greedy answer to `prompt_text` (at most `max_tokens` tokens, on the CPU)."""
    command = [str(binary), "-m", str(gguf_file), "-n", str(max_tokens), "-ngl", "0", prompt_text]
    done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    stdout = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-15:]
        raise LlamaCppError(
            f"llama.cpp exited with status {done.returncode} on {gguf_file.name}:\n" + "\n".join(tail)
        )
    if not stdout.startswith(prompt_text):
        # The echo is the prompt's tokens turned back into text: a difference means other tokens.
        raise LlamaCppError(f"llama.cpp read the prompt as other text: {stdout[: len(prompt_text) + 40]!r}")
    return stdout[len(prompt_text) :].removesuffix("\n")
