"""The JSON-lines protocol between the recipe's process and the worker."""

from __future__ import annotations

import io
import json
from pathlib import Path

from openft.train.reporting import JsonLinesReporter, read_control_file


def test_one_flushed_json_object_per_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    reporter = JsonLinesReporter(stream, tmp_path / "control")
    reporter.message("hello")
    reporter.metrics(1, 10, {"train_loss": 1.5, "train_mean_token_accuracy": 0.25})
    reporter.checkpoint(5, 1, "/out/checkpoints/step-5", {"step": 5.0, "train_loss": 1.0})
    reporter.done("succeeded", 1234, "/out/final")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {"type": "message", "level": "info", "text": "hello"},
        {
            "type": "metrics",
            "step": 1,
            "total_steps": 10,
            "data": {"train_loss": 1.5, "train_mean_token_accuracy": 0.25},
        },
        {
            "type": "checkpoint",
            "step": 5,
            "epoch": 1,
            "path": "/out/checkpoints/step-5",
            "metrics": {"step": 5.0, "train_loss": 1.0},
        },
        {"type": "done", "status": "succeeded", "trained_tokens": 1234, "final_path": "/out/final"},
    ]


def test_control_file_words(tmp_path: Path) -> None:
    control = tmp_path / "control"
    reporter = JsonLinesReporter(io.StringIO(), control)
    assert reporter.control() == "continue"
    control.write_text("pause\n")
    assert reporter.control() == "pause"
    control.write_text("CANCEL")
    assert reporter.control() == "cancel"
    control.write_text("something else")
    assert read_control_file(control) == "continue"
