"""`results.csv`: one row per step, in the exact shape of OpenAI's result file.

    step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy
    1,1.52347,0.0,,

Validation cells are empty on steps without validation. A resumed run keeps the rows up to its
checkpoint's step and appends from there, so the file never holds a step twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

from openft.train.reporting import TRAIN_ACCURACY, TRAIN_LOSS, VALID_ACCURACY, VALID_LOSS

HEADER = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")
DECIMALS = 5


class ResultsCsv:
    def __init__(
        self, path: Path, *, keep_through_step: int = 0, extra_columns: tuple[str, ...] = ()
    ) -> None:
        """`extra_columns`: metrics after OpenAI's columns, named as the metrics are (DPO's rewards)."""
        self.path = path
        self.extra_columns = extra_columns
        kept = _rows_through(path, keep_through_step) if keep_through_step else []
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(HEADER + extra_columns)
            writer.writerows(kept)

    def append(self, step: int, metrics: dict[str, float]) -> None:
        keys = (TRAIN_LOSS, TRAIN_ACCURACY, VALID_LOSS, VALID_ACCURACY, *self.extra_columns)
        row = [str(step)] + [_cell(metrics.get(key)) for key in keys]
        with self.path.open("a", newline="") as stream:
            csv.writer(stream, lineterminator="\n").writerow(row)


def _cell(value: float | None) -> str:
    return "" if value is None else str(round(value, DECIMALS))


def _rows_through(path: Path, last_step: int) -> list[list[str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as stream:
        rows = list(csv.reader(stream))
    return [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= last_step]
