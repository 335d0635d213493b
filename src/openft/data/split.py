"""Split a JSONL file into a training part and a test part, reproducibly."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SplitResult:
    train_path: Path
    test_path: Path
    n_train: int
    n_test: int


def split_file(
    path: Path,
    *,
    test_fraction: float = 0.1,
    seed: int = 0,
    train_path: Path | None = None,
    test_path: Path | None = None,
) -> SplitResult:
    """Write each non-blank line of `path` to the train file or the test file, keeping their order.

    round(n × test_fraction) lines, chosen at random by `seed`, go to the test file (at least one
    when the fraction is above 0 and there are two lines or more). Lines are copied byte for byte.
    Outputs default to `NAME_train.jsonl` and `NAME_test.jsonl` beside the input.
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be at least 0 and below 1, got {test_fraction}")
    path = Path(path)
    train_path = train_path or path.with_name(f"{path.stem}_train.jsonl")
    test_path = test_path or path.with_name(f"{path.stem}_test.jsonl")
    if path.resolve() in (train_path.resolve(), test_path.resolve()):
        raise ValueError("the outputs must not overwrite the input file")
    n_lines = sum(1 for line in _non_blank_lines(path))
    n_test = round(n_lines * test_fraction)
    if test_fraction > 0 and n_lines >= 2:
        n_test = min(max(n_test, 1), n_lines - 1)
    test_indices = set(random.Random(seed).sample(range(n_lines), n_test))
    with train_path.open("wb") as train, test_path.open("wb") as test:
        for index, line in enumerate(_non_blank_lines(path)):
            (test if index in test_indices else train).write(line if line.endswith(b"\n") else line + b"\n")
    return SplitResult(train_path, test_path, n_lines - n_test, n_test)


def _non_blank_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        for line in stream:
            if line.strip():
                yield line
