"""How a recipe tells the outside world what it is doing, and hears whether to stop.

The recipe knows nothing about jobs, events or databases: it calls a `Reporter`. The worker runs the
recipe in a subprocess with a `JsonLinesReporter`, reads one JSON object per stdout line and asks it to
stop by writing `cancel` or `pause` into a control file. A run ends with a "done" line, or with a
"failed" line whose code, message and param become the job's error (or with neither: a crash).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

Control = Literal["continue", "cancel", "pause"]
DoneStatus = Literal["succeeded", "cancelled", "paused"]

# Metric names exactly as OpenAI's events and checkpoints spell them.
TRAIN_LOSS = "train_loss"
TRAIN_ACCURACY = "train_mean_token_accuracy"
VALID_LOSS = "valid_loss"
VALID_ACCURACY = "valid_mean_token_accuracy"
FULL_VALID_LOSS = "full_valid_loss"
FULL_VALID_ACCURACY = "full_valid_mean_token_accuracy"
# DPO's: the share of pairs whose preferred output earns the higher implicit reward, the mean margin
# between the two rewards, each reward's mean (reward = beta * (log pi - log pi_ref) of an output), and
# the preferred outputs' mean negative log-likelihood per token (the supervised term of the objective).
PREFERENCE_METRICS = (
    "reward_accuracy",
    "reward_margin",
    "preferred_reward",
    "non_preferred_reward",
    "sft_loss",
)


class Reporter(Protocol):
    def message(self, text: str, level: str = "info") -> None: ...

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None: ...

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None: ...

    def control(self) -> Control:
        """Checked between steps: "cancel" stops now, "pause" saves a checkpoint first."""
        ...


@runtime_checkable
class ProgressListener(Protocol):
    """Optional extra a reporter may implement: called after every step with the run's position."""

    def progress(self, step: int, total_steps: int, epoch: int, trained_tokens: int) -> None: ...


class JsonLinesReporter:
    """Writes one JSON object per line to `stream`; reads its control word from `control_path`."""

    def __init__(self, stream: TextIO, control_path: Path) -> None:
        self.stream = stream
        self.control_path = control_path

    def message(self, text: str, level: str = "info") -> None:
        self._write({"type": "message", "level": level, "text": text})

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        self._write({"type": "metrics", "step": step, "total_steps": total_steps, "data": values})

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        self._write({"type": "checkpoint", "step": step, "epoch": epoch, "path": path, "metrics": metrics})

    def progress(self, step: int, total_steps: int, epoch: int, trained_tokens: int) -> None:
        # The worker turns these into the events' tokens/s (the metrics line alone has no token count).
        self._write({"type": "progress", "step": step, "trained_tokens": trained_tokens})

    def done(self, status: DoneStatus, trained_tokens: int, final_path: str | None) -> None:
        self._write(
            {"type": "done", "status": status, "trained_tokens": trained_tokens, "final_path": final_path}
        )

    def failed(self, code: str, message: str, param: str | None) -> None:
        """The run stopped for a reason the job's error should carry as it is (code, message, param)."""
        self._write({"type": "failed", "code": code, "message": message, "param": param})

    def control(self) -> Control:
        return read_control_file(self.control_path)

    def _write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()  # the worker reads line by line while training runs


def read_control_file(path: Path) -> Control:
    """ "cancel" or "pause" when the file says so; anything else (or no file) means continue."""
    try:
        word = path.read_text().strip().lower()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return "continue"
    if word == "cancel":
        return "cancel"
    if word == "pause":
        return "pause"
    return "continue"


@dataclass
class MemoryReporter:
    """Keeps every report in lists: for library callers, notebooks and tests.

    `stop_at` maps a step number to the control word returned once that step is done.
    """

    messages: list[tuple[str, str]] = field(default_factory=list)
    steps: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, int, str, dict[str, float]]] = field(default_factory=list)
    stop_at: dict[int, Control] = field(default_factory=dict)

    def message(self, text: str, level: str = "info") -> None:
        self.messages.append((level, text))

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        self.steps.append((step, total_steps, dict(values)))

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        self.checkpoints.append((step, epoch, path, dict(metrics)))

    def control(self) -> Control:
        last_step = self.steps[-1][0] if self.steps else 0
        return self.stop_at.get(last_step, "continue")

    @property
    def train_losses(self) -> list[float]:
        return [values[TRAIN_LOSS] for _, _, values in self.steps]


class SilentReporter:
    """For the ranks of a multi-process run other than rank 0: only rank 0 reports."""

    def message(self, text: str, level: str = "info") -> None:
        pass

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        pass

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        pass

    def control(self) -> Control:
        return "continue"
