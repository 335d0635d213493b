"""`split_file`: a reproducible random split that keeps every line once and in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from openft.data import SplitResult, split_file


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_split_is_reproducible_complete_and_ordered(tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    source.write_text("".join(f'{{"i": {i}}}\n' for i in range(50)) + "\n   \n")
    result = split_file(source, test_fraction=0.1, seed=3)
    assert result == SplitResult(tmp_path / "data_train.jsonl", tmp_path / "data_test.jsonl", 45, 5)
    train, test = _lines(result.train_path), _lines(result.test_path)
    assert sorted(train + test, key=lambda line: int(line[6:-1])) == [f'{{"i": {i}}}' for i in range(50)]
    assert train == sorted(train, key=lambda line: int(line[6:-1]))
    again = split_file(
        source, test_fraction=0.1, seed=3, train_path=tmp_path / "a.jsonl", test_path=tmp_path / "b.jsonl"
    )
    assert _lines(again.test_path) == test
    other = split_file(
        source, test_fraction=0.1, seed=4, train_path=tmp_path / "c.jsonl", test_path=tmp_path / "d.jsonl"
    )
    assert _lines(other.test_path) != test


def test_a_tiny_file_still_gets_one_test_line(tmp_path: Path) -> None:
    source = tmp_path / "two.jsonl"
    source.write_text('{"a": 1}\n{"b": 2}')  # no final newline: the copy gets one
    result = split_file(source, test_fraction=0.1)
    assert (result.n_train, result.n_test) == (1, 1)
    assert result.train_path.read_text().endswith("}\n") and result.test_path.read_text().endswith("}\n")


def test_bad_fraction_and_overwriting_the_input_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text('{"a": 1}\n')
    with pytest.raises(ValueError, match="test_fraction"):
        split_file(source, test_fraction=1.0)
    with pytest.raises(ValueError, match="must not overwrite"):
        split_file(source, train_path=source)
