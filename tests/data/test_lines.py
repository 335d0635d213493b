"""The chunked line reader gives the same lines as a whole-file split, at any chunk size."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from openft.data import lines
from openft.data.lines import BadLine, iter_lines


def _expected(raw: bytes) -> list[tuple[int, str]]:
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    return [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]


def _random_file(rng: random.Random) -> bytes:
    pieces = []
    for _ in range(rng.randint(0, 30)):
        kind = rng.random()
        if kind < 0.2:
            pieces.append("")
        elif kind < 0.3:
            pieces.append("  \t")
        else:
            pieces.append(
                '{"k": "' + "é☃x"[rng.randint(0, 2)] * rng.randint(0, 40) + '"}\r'[: rng.randint(2, 3)]
            )
    text = "\n".join(pieces) + ("\n" if rng.random() < 0.5 else "")
    return (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + text.encode()


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 64, 1 << 20])
def test_any_chunk_size_gives_the_lines_of_a_plain_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(lines, "READ_CHUNK_BYTES", chunk_bytes)
    rng = random.Random(chunk_bytes)
    path = tmp_path / "f.jsonl"
    for _ in range(40):
        raw = _random_file(rng)
        path.write_bytes(raw)
        assert list(iter_lines(path)) == _expected(raw)


@pytest.mark.parametrize("chunk_bytes", [1, 3, 5, 1 << 20])
def test_over_long_lines_are_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(lines, "READ_CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\n' + b"x" * 40 + b'\n{"b":2}\n' + b"y" * 25)
    got = list(iter_lines(path, max_line_bytes=20))
    assert [number for number, _ in got] == [1, 2, 3, 4]
    assert got[0][1] == '{"a":1}' and got[2][1] == '{"b":2}'
    assert isinstance(got[1][1], BadLine) and got[1][1].code == "line_too_long"
    assert isinstance(got[3][1], BadLine) and got[3][1].message.startswith("line 4 is longer than 20 bytes;")


@pytest.mark.parametrize("chunk_bytes", [1, 4, 1 << 20])
def test_invalid_utf8_names_line_and_offsets_and_reading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(lines, "READ_CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":"\xff"}\n{"c":3}\n')
    got = list(iter_lines(path))
    assert got[0] == (1, '{"a":1}') and got[2] == (3, '{"c":3}')
    bad = got[1][1]
    assert isinstance(bad, BadLine)
    assert bad.message == (
        "line 2 is not valid UTF-8: byte 6 of the line (file offset 14) is 0xff. Save the file as UTF-8."
    )


@pytest.mark.parametrize("chunk_bytes", [1, 4, 1 << 20])
def test_nul_byte_stops_reading_as_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(lines, "READ_CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":\x002}\n{"c":3}\n')
    got = list(iter_lines(path))
    assert got[0] == (1, '{"a":1}')
    assert len(got) == 2
    bad = got[1][1]
    assert isinstance(bad, BadLine) and bad.fatal and bad.line == 2
    assert bad.message.startswith("line 2 contains a NUL byte at byte 5 of the line: this is a binary file")
