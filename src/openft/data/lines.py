"""Stream a JSONL file line by line in bounded chunks.

Memory stays bounded by `max_line_bytes` plus one read chunk, whatever the file size: an over-long
line is reported and skipped while it streams past, never read whole. Problems with a line's
framing (too long, not UTF-8, not JSON) come back as `BadLine` values so that a caller can stop at
the first one (the upload scan) or report them all and go on (the checker).

Blank and whitespace-only lines are skipped without an error and are not examples; line numbers
still count them, so every reported number matches what an editor shows. A UTF-8 byte-order mark
at the start of the file is ignored.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.data.surrogates import lone_surrogate_field, lone_surrogate_message, may_hold_lone_surrogate

READ_CHUNK_BYTES = 1 << 20
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be read as JSON. `fatal` means no later line can be trusted either."""

    line: int
    code: str  # line_too_long | binary_file | invalid_utf8 | invalid_json
    message: str
    fatal: bool = False
    field: str | None = None  # the JSON path of the bad value, when one is to blame


def format_bytes(n_bytes: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= size:
            value = n_bytes / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n_bytes} bytes"


def _too_long(line: int, max_line_bytes: int) -> BadLine:
    return BadLine(
        line,
        "line_too_long",
        f"line {line} is longer than {format_bytes(max_line_bytes)}; each line must hold one example "
        "of at most that size. Split long conversations into several examples or shorten them.",
    )


def _binary(line: int, offset_in_line: int) -> BadLine:
    return BadLine(
        line,
        "binary_file",
        f"line {line} contains a NUL byte at byte {offset_in_line} of the line: this is a binary file "
        "(or UTF-16 text), not UTF-8 JSONL. Save the data as UTF-8 text with one JSON object per line.",
        fatal=True,
    )


def _invalid_utf8(line: int, raw: bytes, file_offset: int) -> BadLine:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start
    else:  # pragma: no cover - only called for lines that failed to decode
        position = 0
    return BadLine(
        line,
        "invalid_utf8",
        f"line {line} is not valid UTF-8: byte {position} of the line (file offset "
        f"{file_offset + position}) is 0x{raw[position]:02x}. Save the file as UTF-8.",
    )


def _lines_of_block(
    block: bytes, first_line: int, block_offset: int, max_line_bytes: int
) -> Iterator[tuple[int, str | BadLine]]:
    """Yield the lines of `block` (complete lines joined by b"\\n"), skipping blank ones."""
    if len(block) > max_line_bytes:
        raw_lines = block.split(b"\n")
        if max(map(len, raw_lines)) > max_line_bytes:
            yield from _lines_one_by_one(raw_lines, first_line, block_offset, max_line_bytes)
            return
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        yield from _lines_one_by_one(block.split(b"\n"), first_line, block_offset, max_line_bytes)
        return
    line_no = first_line
    for line in text.split("\n"):
        if line and not line.isspace():
            yield line_no, line
        line_no += 1


def _lines_one_by_one(
    raw_lines: list[bytes], first_line: int, block_offset: int, max_line_bytes: int
) -> Iterator[tuple[int, str | BadLine]]:
    """The slow path for a block that holds a bad line: check each line on its own."""
    offset = block_offset
    for index, raw in enumerate(raw_lines):
        line_no = first_line + index
        if len(raw) > max_line_bytes:
            yield line_no, _too_long(line_no, max_line_bytes)
        else:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line_no, _invalid_utf8(line_no, raw, offset)
            else:
                if line and not line.isspace():
                    yield line_no, line
        offset += len(raw) + 1


def iter_lines(
    path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, str | BadLine]]:
    """Yield `(line_number, text)` for each non-blank line, or `(line_number, BadLine)`.

    Line numbers start at 1. After a fatal `BadLine` nothing more is yielded.
    """
    with open(path, "rb") as stream:
        pending = b""  # the start of a line whose end has not been read yet
        skipping = False  # inside an over-long line that was already reported
        line_no = 1  # the number of the line that `pending` starts
        offset = len(_UTF8_BOM) if stream.read(len(_UTF8_BOM)) == _UTF8_BOM else 0  # offset of `pending`
        stream.seek(offset)
        binary: tuple[int, BadLine] | None = None
        while chunk := stream.read(READ_CHUNK_BYTES):
            if b"\x00" in chunk:  # read up to the line with the NUL, then stop
                binary = _locate_nul(pending, chunk, line_no, skipping)
                chunk = chunk[: chunk.rfind(b"\n", 0, chunk.index(b"\x00")) + 1]
            if skipping:  # drop the rest of the over-long line, up to its newline
                newline = chunk.find(b"\n")
                if newline == -1:
                    chunk, offset = b"", offset + len(chunk)
                else:
                    chunk, offset = chunk[newline + 1 :], offset + newline + 1
                    line_no, skipping = line_no + 1, False
            end = chunk.rfind(b"\n")
            if end == -1:
                pending += chunk
            else:
                block = pending + chunk[:end] if pending else chunk[:end]
                yield from _lines_of_block(block, line_no, offset, max_line_bytes)
                line_no += block.count(b"\n") + 1
                offset += len(block) + 1
                pending = chunk[end + 1 :]
            if len(pending) > max_line_bytes:
                yield line_no, _too_long(line_no, max_line_bytes)
                skipping, offset, pending = True, offset + len(pending), b""
            if binary:
                yield binary
                return
        if pending and not skipping:
            yield from _lines_of_block(pending, line_no, offset, max_line_bytes)


def _locate_nul(pending: bytes, chunk: bytes, line_no: int, skipping: bool) -> tuple[int, BadLine]:
    before = chunk[: chunk.index(b"\x00")]
    newlines = before.count(b"\n")
    if newlines:
        line_start = before.rfind(b"\n") + 1
        column = len(before) - line_start
    else:
        column = (0 if skipping else len(pending)) + len(before)
    line = line_no + newlines
    return line, _binary(line, column)


class _TooManyDigits(ValueError):
    """An integer literal longer than Python converts; the message says so in the user's terms."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int:
    # Python refuses to convert integers longer than its limit with an error about its own settings.
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        raise _TooManyDigits(
            f"a number has too many digits (more than {limit}); write it as a string, or shorten it"
        )
    return int(text)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)
NESTED_TOO_DEEPLY = "JSON nested too deeply"


def decode_json(text: str) -> Any:
    """Strict JSON (no NaN or Infinity): raises ValueError or RecursionError, see `json_error_text`."""
    return _DECODER.decode(text)


def json_error_text(exc: ValueError | RecursionError) -> str:
    """What went wrong in `decode_json`, in the user's terms rather than Python's."""
    return NESTED_TOO_DEEPLY if isinstance(exc, RecursionError) else str(exc)


def parse_json_line(line_no: int, text: str) -> Any:
    """Decode one line, returning a `BadLine` when it is not JSON (or not JSON that can be read), or not
    text (a lone surrogate)."""
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return BadLine(
            line_no,
            "invalid_json",
            f"line {line_no} is not valid JSON: {exc.msg} (column {exc.colno}). "
            "Each line must hold one complete JSON object.",
        )
    except _TooManyDigits as exc:
        return BadLine(line_no, "invalid_json", f"line {line_no}: {exc}.")
    except RecursionError:
        return BadLine(
            line_no,
            "invalid_json",
            f"line {line_no}: {NESTED_TOO_DEEPLY}; an example needs only a few levels of objects and arrays.",
        )
    except ValueError as exc:  # NaN or Infinity (see _reject_constant)
        return BadLine(line_no, "invalid_json", f"line {line_no} is not valid JSON: {exc}.")
    if may_hold_lone_surrogate(text):
        field = lone_surrogate_field(value)
        if field is not None:
            message = f"line {line_no}: {lone_surrogate_message(field)}"
            return BadLine(line_no, "invalid_utf8", message, field=field or None)
    return value


def iter_json_lines(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """Yield `(line_number, decoded value)` per non-blank line, or `(line_number, BadLine)`."""
    for line_no, text in iter_lines(path, max_line_bytes=max_line_bytes):
        if isinstance(text, BadLine):
            yield line_no, text
        else:
            yield line_no, parse_json_line(line_no, text)
