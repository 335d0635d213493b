"""Training examples -> token ids and loss masks, through the one chat rendering that inference also uses.

Files reaching the recipe were validated when the job was created; the checks here only turn what
would otherwise be an obscure crash into a message naming the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.data.lines import BadLine, iter_json_lines
from openft.data.render import render_chat, truncate


class DataError(ValueError):
    """A training or validation example the recipe cannot use; the message names file and line."""


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    loss_mask: list[int]  # 1 where the token is predicted with loss (assistant content, weight 1)

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        # The first token is never predicted (nothing comes before it).
        return sum(self.loss_mask[1:])


def tokenize_example(tokenizer: Any, example: Mapping[str, Any], max_seq_length: int) -> TokenizedExample:
    """One chat example, rendered with its tools and truncated from the end to `max_seq_length`."""
    rendered = render_chat(tokenizer, example["messages"], _tools_of(example))
    rendered = truncate(rendered, max_seq_length)
    return TokenizedExample(input_ids=rendered.input_ids, loss_mask=rendered.loss_mask)


def load_examples(path: Path, tokenizer: Any, max_seq_length: int) -> list[TokenizedExample]:
    """Every example of a chat JSONL file, in file order."""
    examples = []
    for line_no, value in iter_json_lines(path):
        if isinstance(value, BadLine):
            raise DataError(f"{path.name}: {value.message}")
        if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
            raise DataError(
                f"{path.name} line {line_no}: supervised fine-tuning needs chat examples, "
                '{"messages": [...]}'
            )
        try:
            examples.append(tokenize_example(tokenizer, value, max_seq_length))
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
    if not examples:
        raise DataError(f"{path.name} has no examples")
    return examples


def _tools_of(example: Mapping[str, Any]) -> Sequence[Mapping[str, Any]] | None:
    tools = example.get("tools")
    if tools:
        return list(tools)
    # The deprecated `functions` key names the same thing without the {"type": "function"} wrapper.
    functions = example.get("functions")
    if functions:
        return [{"type": "function", "function": function} for function in functions]
    return None
