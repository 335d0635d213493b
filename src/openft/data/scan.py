"""The fast line-level scan that runs on every upload: is this a JSONL file of one known format?

It streams the file (memory stays flat on any size), decodes every line as JSON and classifies each
object by its keys. It stops at the first problem and names its line. The deep per-example checks
(roles, weights, tool calls, token counts) belong to `check_file`, which runs when a job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openft.data.formats import FORMAT_LABELS, UNEXPECTED_FORMAT, FileFormat, detect_format, json_type_name
from openft.data.lines import DEFAULT_MAX_LINE_BYTES, BadLine, iter_json_lines


@dataclass(frozen=True)
class FileScan:
    format: FileFormat | None  # None when error
    n_examples: int  # non-blank lines parsed
    error: str | None  # first problem, human readable, naming the line number and what to do


def scan_jsonl(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> FileScan:
    """Check that `path` holds one JSON object per line, all in the same training-data format.

    Blank lines are skipped and are not examples; a file with no examples is an error.
    """
    file_format: FileFormat | None = None
    first_line_of_format = 0
    n_examples = 0
    for line_no, value in iter_json_lines(path, max_line_bytes=max_line_bytes):
        if isinstance(value, BadLine):
            return FileScan(None, n_examples, value.message)
        if not isinstance(value, dict):
            return FileScan(None, n_examples, _not_an_object(line_no, json_type_name(value)))
        example_format = detect_format(value)
        if example_format is None:
            return FileScan(None, n_examples, _unknown_format(line_no, list(value)))
        if file_format is None:
            file_format, first_line_of_format = example_format, line_no
        elif example_format != file_format:
            message = mixed_formats_message(file_format, first_line_of_format, example_format, line_no)
            return FileScan(None, n_examples, message)
        n_examples += 1
    if n_examples == 0:
        return FileScan(
            None, 0, "The file is empty: it has no JSON lines. Add one training example per line."
        )
    return FileScan(file_format, n_examples, None)


def _not_an_object(line_no: int, type_name: str) -> str:
    return (
        f"line {line_no} is a JSON {type_name}, not an object. Each line must be one JSON object, "
        'such as {"messages": [...]}.'
    )


def _unknown_format(line_no: int, keys: list[str]) -> str:
    shown = ", ".join(f'"{key}"' for key in keys[:8]) or "no keys"
    return (
        f"line {line_no}: {UNEXPECTED_FORMAT} The object has {shown}; a chat example needs "
        '"messages", a prompt/completion example needs "prompt" and "completion", and a preference '
        'example needs "input", "preferred_output" and "non_preferred_output".'
    )


def mixed_formats_message(first: FileFormat, first_line: int, other: FileFormat, other_line: int) -> str:
    return (
        f"The file mixes formats: line {first_line} is {FORMAT_LABELS[first]} but line {other_line} "
        f"is {FORMAT_LABELS[other]}. Use one format per file."
    )
