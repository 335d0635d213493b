# ruff: noqa: E501  (expected messages are compared whole)
"""The upload scan: one known format per file, the first problem named by its line."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

from openft.data.scan import FileScan, scan_jsonl

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
PROMPT_COMPLETION = {"prompt": "2+2=", "completion": "4"}
PREFERENCE = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello!"}],
    "non_preferred_output": [{"role": "assistant", "content": "What?"}],
}


def _write(tmp_path: Path, *rows: object, raw: bytes | None = None) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode())
    return path


def test_each_format_is_recognised(tmp_path: Path) -> None:
    assert scan_jsonl(_write(tmp_path, CHAT, CHAT, CHAT)) == FileScan("chat", 3, None)
    assert scan_jsonl(_write(tmp_path, PROMPT_COMPLETION)) == FileScan("prompt_completion", 1, None)
    assert scan_jsonl(_write(tmp_path, PREFERENCE, PREFERENCE)) == FileScan("preference", 2, None)
    old_spelling = {
        "input": PREFERENCE["input"],
        "preferred_completion": PREFERENCE["preferred_output"],
        "non_preferred_completion": PREFERENCE["non_preferred_output"],
    }
    assert scan_jsonl(_write(tmp_path, old_spelling)) == FileScan("preference", 1, None)


def test_blank_lines_are_skipped_and_not_counted(tmp_path: Path) -> None:
    raw = b"\n" + json.dumps(CHAT).encode() + b"\r\n   \n\n" + json.dumps(CHAT).encode()
    assert scan_jsonl(_write(tmp_path, raw=raw)) == FileScan("chat", 2, None)


def test_a_utf8_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(CHAT).encode() + b"\n"
    assert scan_jsonl(_write(tmp_path, raw=raw)) == FileScan("chat", 1, None)


def test_empty_and_blank_only_files(tmp_path: Path) -> None:
    message = "The file is empty: it has no JSON lines. Add one training example per line."
    assert scan_jsonl(_write(tmp_path, raw=b"")) == FileScan(None, 0, message)
    assert scan_jsonl(_write(tmp_path, raw=b"\n  \n\n")) == FileScan(None, 0, message)


def test_binary_file(tmp_path: Path) -> None:
    scan = scan_jsonl(_write(tmp_path, raw=gzip.compress(b'{"messages": []}\n' * 50)))
    assert scan.format is None and scan.n_examples == 0
    assert scan.error is not None
    assert scan.error.startswith("line 1 contains a NUL byte at byte ")
    assert "this is a binary file (or UTF-16 text), not UTF-8 JSONL" in scan.error


def test_utf16_text_is_reported_as_binary(tmp_path: Path) -> None:
    scan = scan_jsonl(_write(tmp_path, raw=json.dumps(CHAT).encode("utf-16")))
    assert scan.error is not None and "(or UTF-16 text)" in scan.error


def test_invalid_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    raw = json.dumps(CHAT).encode() + b'\n{"prompt": "caf\xe9", "completion": "x"}\n'
    first_line_bytes = len(json.dumps(CHAT)) + 1
    assert scan_jsonl(_write(tmp_path, raw=raw)) == FileScan(
        None,
        1,
        f"line 2 is not valid UTF-8: byte 15 of the line (file offset {first_line_bytes + 15}) is 0xe9. "
        "Save the file as UTF-8.",
    )


def test_line_that_is_not_json(tmp_path: Path) -> None:
    raw = json.dumps(CHAT).encode() + b"\n" + b'{"messages": [}\n'
    assert scan_jsonl(_write(tmp_path, raw=raw)) == FileScan(
        None,
        1,
        "line 2 is not valid JSON: Expecting value (column 15). Each line must hold one complete JSON object.",
    )


def test_nan_is_not_json(tmp_path: Path) -> None:
    scan = scan_jsonl(_write(tmp_path, raw=b'{"prompt": "a", "completion": NaN}\n'))
    assert scan == FileScan(None, 0, "line 1 is not valid JSON: NaN is not valid JSON.")


def test_json_that_is_not_an_object(tmp_path: Path) -> None:
    assert scan_jsonl(_write(tmp_path, CHAT, [CHAT])) == FileScan(
        None,
        1,
        'line 2 is a JSON array, not an object. Each line must be one JSON object, such as {"messages": [...]}.',
    )
    assert scan_jsonl(_write(tmp_path, "text")).error == (
        'line 1 is a JSON string, not an object. Each line must be one JSON object, such as {"messages": [...]}.'
    )


def test_object_of_no_known_format(tmp_path: Path) -> None:
    assert scan_jsonl(_write(tmp_path, CHAT, CHAT, {"text": "hello", "label": 1})) == FileScan(
        None,
        2,
        "line 3: Unexpected file format, expected either prompt/completion pairs or chat messages. The object "
        'has "text", "label"; a chat example needs "messages", a prompt/completion example needs "prompt" and '
        '"completion", and a preference example needs "input", "preferred_output" and "non_preferred_output".',
    )


def test_mixed_formats_name_the_first_line_of_each(tmp_path: Path) -> None:
    path = _write(
        tmp_path, raw=("\n" + (json.dumps(CHAT) + "\n") * 3 + json.dumps(PROMPT_COMPLETION)).encode()
    )
    assert scan_jsonl(path) == FileScan(
        None,
        3,
        "The file mixes formats: line 2 is chat messages but line 5 is prompt/completion pairs. "
        "Use one format per file.",
    )


def test_a_50_mb_line_is_reported_without_being_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as stream:
        stream.write(b'{"prompt": "')
        block = b"a" * (1 << 20)
        for _ in range(50):
            stream.write(block)
        stream.write(b'", "completion": "b"}\n')
    tracemalloc.start()
    try:
        scan = scan_jsonl(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan == FileScan(
        None,
        0,
        "line 1 is longer than 16 MiB; each line must hold one example of at most that size. "
        "Split long conversations into several examples or shorten them.",
    )
    assert peak_bytes < 40 * (1 << 20)


def test_a_huge_integer_is_named_plainly_not_with_pythons_settings(tmp_path: Path) -> None:
    chat = json.dumps(CHAT).encode()
    raw = chat + b"\n" + chat + b"\n" + b'{"messages": [], "n": ' + b"7" * 5000 + b"}\n"
    scan = scan_jsonl(_write(tmp_path, raw=raw))
    assert scan.error is not None and scan.error.startswith("line 3: a number has too many digits")
    assert "sys." not in scan.error


def test_deeply_nested_json_is_named_plainly(tmp_path: Path) -> None:
    chat = json.dumps(CHAT).encode()
    raw = chat + b"\n" + chat + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    scan = scan_jsonl(_write(tmp_path, raw=raw))
    assert scan.error is not None and scan.error.startswith("line 3: JSON nested too deeply")
    assert "recursion" not in scan.error
