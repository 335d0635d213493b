"""The Ollama `Modelfile` beside an exported GGUF file: `ollama create NAME -f Modelfile` in its folder.

Ollama does not run Jinja chat templates, so the TEMPLATE is the same conversation layout written in
Go's template language. It is written for ChatML-style templates (`<|im_start|>role ... <|im_end|>`,
the built-in models' and SmolLM2's); a default system prompt that the Jinja template adds when a
conversation has none becomes SYSTEM. Other templates are left to Ollama, which reads the GGUF file's
`tokenizer.chat_template`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openft.data.render import stop_token_ids

MODELFILE = "Modelfile"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# Ollama allocates the context window up front: a long one costs memory that a chat rarely needs.
MAX_NUM_CTX = 8192
CHATML_GO_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
    "{{ end }}{{- end }}<|im_start|>assistant\n"
)


def write_modelfile(
    out_dir: Path, gguf_name: str, tokenizer: Any, context_length: int, *, note: str | None = None
) -> Path:
    lines = [f"# {note}", ""] if note else []
    lines += [f"FROM ./{gguf_name}", ""]
    template = tokenizer.chat_template or ""
    if IM_START in template and IM_END in template:
        lines.append(f'TEMPLATE """{CHATML_GO_TEMPLATE}"""')
        system = default_system_prompt(tokenizer)
        if system:
            lines.append(f'SYSTEM """{system}"""')
    else:
        lines.append("# The chat template is the GGUF file's own (tokenizer.chat_template).")
    lines.append("")
    for token_id in stop_token_ids(tokenizer):
        lines.append(f'PARAMETER stop "{tokenizer.convert_ids_to_tokens(token_id)}"')
    lines.append(f"PARAMETER num_ctx {min(context_length, MAX_NUM_CTX)}")
    path = out_dir / MODELFILE
    path.write_text("\n".join(lines) + "\n")
    return path


def default_system_prompt(tokenizer: Any) -> str | None:
    """The system message the template writes for a conversation that has none, if it writes one."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    )
    head = f"{IM_START}system\n"
    if not isinstance(text, str) or not text.startswith(head) or IM_END not in text:
        return None
    return text[len(head) : text.index(IM_END)] or None
