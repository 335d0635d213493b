"""What the lint remembers about each example: a few hashes and numbers, never the text itself.

The lint must see the whole file (a duplicate can be 900,000 lines after its original) while memory
stays flat, so each example is reduced to fixed-size numbers as it streams past, in columns that spill
to disk (openft.data.lint_columns).
Python's `hash` of a string is stable within one process, which is all that comparing needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from openft.data import lint_columns
from openft.data.formats import FileFormat
from openft.data.lint_columns import SpilledColumn
from openft.data.stats import Histogram
from openft.data.validate_other import preference_outputs
from openft.data.validate_prompt import prompt_messages

# ASCII punctuation and spacing become spaces, ASCII letters lower case; other bytes stay as they are.
_NORMALIZE_BYTES = bytes(byte if chr(byte).isalnum() or byte >= 128 else 32 for byte in range(256)).lower()
SCRIPTS = ("latin", "cyrillic", "greek", "arabic", "hebrew", "devanagari", "thai", "cjk", "hangul")
# The first letter of a non-Latin script decides; an answer is "latin" when it has ASCII letters and none.
_NON_LATIN = re.compile(
    "([\u0400-\u04ff])|([\u0370-\u03ff])|([\u0600-\u06ff])|([\u0590-\u05ff])|([\u0900-\u097f])|"
    "([\u0e00-\u0e7f])|([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff])|([\uac00-\ud7af])"
)
_ASCII_LETTER = re.compile("[A-Za-z]")
_MAX_PREVIEWS = 10_000
_PREVIEW_CHARS = 80
_PREVIEW_SOURCE_CHARS = 400
_MAX_REMEMBERED = 2048

# Bits of an answer's `style` number.
STYLE_JSON = 1
STYLE_TRAILING_SPACE = 2
STYLE_EMPTY = 4

# How a preference example's two answers differ.
PAIR_DISTINCT = 0
PAIR_IDENTICAL = 1
PAIR_TRAILING_SPACE_ONLY = 2


@dataclass
class LintTable:
    """Per-example numbers for one file, in input order; long columns spill to disk (lint_columns)."""

    lines: SpilledColumn = field(default_factory=lambda: SpilledColumn("i"))
    example_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))  # identical text
    # Same words, any case/punctuation.
    normalized_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))
    prompt_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))  # all before the answer
    answer_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))
    system_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))  # 0: no system prompt
    answer_chars: SpilledColumn = field(default_factory=lambda: SpilledColumn("i"))
    answer_styles: SpilledColumn = field(default_factory=lambda: SpilledColumn("b"))
    # The index in SCRIPTS of the answer's script, -1: no letters.
    answer_scripts: SpilledColumn = field(default_factory=lambda: SpilledColumn("b"))
    # Preference examples only (0 elsewhere): the non-preferred answer's words, its length in characters,
    # and how the two answers differ (PAIR_* below).
    rejected_hashes: SpilledColumn = field(default_factory=lambda: SpilledColumn("q"))
    rejected_chars: SpilledColumn = field(default_factory=lambda: SpilledColumn("i"))
    pair_kinds: SpilledColumn = field(default_factory=lambda: SpilledColumn("b"))
    # The lengths in characters of the answers that are not empty (for their median, exactly).
    answer_lengths: Histogram = field(default_factory=Histogram)
    # A short preview of a few texts, to name them in findings (bounded: only the first ones seen).
    previews: dict[int, str] = field(default_factory=dict)
    _words: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.lines)

    def columns(self) -> tuple[SpilledColumn, ...]:
        return (
            self.lines,
            self.example_hashes,
            self.normalized_hashes,
            self.prompt_hashes,
            self.answer_hashes,
            self.system_hashes,
            self.answer_chars,
            self.answer_styles,
            self.answer_scripts,
            self.rejected_hashes,
            self.rejected_chars,
            self.pair_kinds,
        )

    def close(self) -> None:
        """Delete the spilled columns' temporary files (they also go when the table is collected)."""
        for column in self.columns():
            column.close()

    def add(self, line: int, raw_line: str, file_format: FileFormat, example: dict[str, Any]) -> None:
        system, prompt, answer = _split_example(file_format, example)
        # Prompts and answers are compared by their words, so that case or spacing alone is no difference.
        prompt_key = hash(tuple((role, self._normalized(text)) for role, text in prompt))
        answer_key = hash(_normalize(answer))
        self.lines.append(line)
        self.example_hashes.append(hash(raw_line.strip()))
        self.normalized_hashes.append(hash((prompt_key, answer_key)))
        self.prompt_hashes.append(prompt_key)
        self.answer_hashes.append(answer_key)
        self.system_hashes.append(hash(system) if system is not None else 0)
        self.answer_chars.append(len(answer))
        style = answer_style(answer)
        self.answer_styles.append(style)
        self.answer_scripts.append(answer_script(answer))
        rejected = _rejected_answer(example) if file_format == "preference" else None
        self.rejected_hashes.append(hash(_normalize(rejected)) if rejected is not None else 0)
        self.rejected_chars.append(len(rejected) if rejected is not None else 0)
        self.pair_kinds.append(pair_kind(answer, rejected) if rejected is not None else PAIR_DISTINCT)
        if not style & STYLE_EMPTY:
            self.answer_lengths.add(len(answer))
        if len(self.lines.buffer) >= lint_columns.CHUNK_ROWS:
            for column in self.columns():
                column.spill()
        previews = self.previews
        if len(previews) < _MAX_PREVIEWS:
            # Answers that repeat (the ones findings quote) are short ones.
            if answer_key not in previews and len(answer) <= _PREVIEW_SOURCE_CHARS:
                previews[answer_key] = _preview(answer)
            if system is not None and hash(system) not in previews:
                previews[hash(system)] = _preview(system)

    def _normalized(self, text: str) -> bytes:
        """`_normalize`, remembered for texts that come back (system prompts), within a bounded cache."""
        words = self._words.get(text)
        if words is None:
            if len(self._words) >= _MAX_REMEMBERED:
                self._words.clear()
            words = self._words[text] = _normalize(text)
        return words


def answer_style(answer: str) -> int:
    style = 0
    stripped = answer.strip()
    if not stripped:
        return STYLE_EMPTY
    if stripped[0] in "{[" and stripped[-1] in "}]" and _is_json(stripped):
        style |= STYLE_JSON
    if answer[-1].isspace():
        style |= STYLE_TRAILING_SPACE
    return style


def pair_kind(preferred: str, rejected: str) -> int:
    if preferred == rejected:
        return PAIR_IDENTICAL
    if preferred.rstrip() == rejected.rstrip():
        return PAIR_TRAILING_SPACE_ONLY
    return PAIR_DISTINCT


def answer_script(answer: str) -> int:
    """The index in SCRIPTS of the answer's script, or -1 when it has no letters."""
    if answer.isascii():
        return 0 if _ASCII_LETTER.search(answer) else -1
    match = _NON_LATIN.search(answer)
    if match is not None and match.lastindex is not None:
        return match.lastindex  # group n is SCRIPTS[n]
    return 0 if _ASCII_LETTER.search(answer) else -1


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _normalize(text: str) -> bytes:
    """The words of a text: case, spacing and ASCII punctuation no longer matter."""
    return b" ".join(text.encode("utf-8", "surrogatepass").lower().translate(_NORMALIZE_BYTES).split())


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _message_text(message: dict[str, Any]) -> str:
    text = _text(message.get("content"))
    calls = message.get("tool_calls") or message.get("function_call")
    return f"{text}\x1f{json.dumps(calls, sort_keys=True)}" if calls else text


def _rejected_answer(example: dict[str, Any]) -> str:
    return _text(preference_outputs(example)[1][0].get("content"))


def _split_example(
    file_format: FileFormat, example: dict[str, Any]
) -> tuple[str | None, list[tuple[str, str]], str]:
    """(system prompt or None, the (role, text) of each message before the answer, the answer)."""
    if file_format == "prompt_completion":
        return None, [("prompt", example["prompt"])], example["completion"]
    if file_format == "preference":
        messages = example["input"]["messages"]
        answer = _text(preference_outputs(example)[0][0].get("content"))
    elif file_format == "prompt":  # the answer is sampled; a written one (dropped by the job) is kept apart
        messages = list(prompt_messages(example["messages"]))
        final = example["messages"][len(messages) :]
        answer = _message_text(final[0]) if final else ""
    else:
        messages = example["messages"]
        last = len(messages) - 1
        while messages[last]["role"] != "assistant":
            last -= 1
        messages, answer = messages[:last], _message_text(messages[last])
    prompt = [(message["role"], _message_text(message)) for message in messages]
    system = next((text for role, text in prompt if role in ("system", "developer")), None)
    return system, prompt, answer
