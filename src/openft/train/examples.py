"""Training examples -> token ids and loss masks, through the one chat rendering that inference also uses.

Files reaching the recipe were validated when the job was created; the checks here only turn what
would otherwise be an obscure crash into a message naming the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openft.data.lines import BadLine, iter_json_lines
from openft.data.render import render_chat, truncate


class DataError(ValueError):
    """A training or validation example the recipe cannot use; the message names file and line."""


class Example(Protocol):
    """What the shared parts of a run need of a training example, whatever the method."""

    @property
    def n_tokens(self) -> int: ...

    @property
    def n_loss_tokens(self) -> int: ...

    @property
    def n_cut_tokens(self) -> int: ...

    @property
    def line(self) -> int: ...


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    loss_mask: list[int]  # 1 where the token is predicted with loss (assistant content, weight 1)
    line: int = 0  # in its file, for messages about it
    n_cut_tokens: int = 0  # tokens past max_seq_length, cut from the end

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        # The first token is never predicted (nothing comes before it).
        return sum(self.loss_mask[1:])


def tokenize_example(
    tokenizer: Any, example: Mapping[str, Any], max_seq_length: int, line: int = 0
) -> TokenizedExample:
    """One chat example, rendered with its tools and truncated from the end to `max_seq_length`."""
    whole = render_chat(tokenizer, example["messages"], tools_of(example))
    rendered = truncate(whole, max_seq_length)
    n_cut = len(whole.input_ids) - len(rendered.input_ids)
    return TokenizedExample(rendered.input_ids, rendered.loss_mask, line=line, n_cut_tokens=n_cut)


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
            examples.append(tokenize_example(tokenizer, value, max_seq_length, line_no))
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
    if not examples:
        raise DataError(f"{path.name} has no examples")
    return examples


def tools_of(example: Mapping[str, Any]) -> Sequence[Mapping[str, Any]] | None:
    tools = example.get("tools")
    if tools:
        return list(tools)
    # The deprecated `functions` key names the same thing without the {"type": "function"} wrapper.
    functions = example.get("functions")
    if functions:
        return [{"type": "function", "function": function} for function in functions]
    return None


def truncation_warning(examples: Sequence[Example], file_label: str, max_seq_length: int) -> str | None:
    """A message naming the examples cut to `max_seq_length` (None when none was), as training sees them."""
    cut = [example for example in examples if example.n_cut_tokens]
    if not cut:
        return None
    lines = ", ".join(str(example.line) for example in cut[:5]) + (", ..." if len(cut) > 5 else "")
    n_lost = sum(example.n_cut_tokens for example in cut)
    return (
        f"{len(cut)} {file_label} example{'s are' if len(cut) > 1 else ' is'} longer than {max_seq_length} "
        f"tokens and {'were' if len(cut) > 1 else 'was'} cut from the end ({n_lost} tokens in all; line "
        f"{lines}): shorten {'them' if len(cut) > 1 else 'it'}, or raise hyperparameters.max_seq_length up "
        "to the model's context"
    )
