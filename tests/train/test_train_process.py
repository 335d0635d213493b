"""`python -m openft.train.run` as the worker runs it: JSON lines, the control file, torchrun, errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openft.train.config import SFTConfig
from openft.train.spec import SupervisedHyperparameters as Hyperparameters

pytestmark = pytest.mark.slow
TIMEOUT_S = 300


def _write_config(config: SFTConfig, tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    return path


def _run(args: list[str], cwd: Path) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()], done


def _of_type(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == kind]


def test_reports_arrive_in_order(
    tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path, config_for: Any
) -> None:
    train_file, valid_file = small_data
    config = config_for(
        tiny_model,
        train_file,
        tmp_path / "out",
        valid_file=valid_file,
        hp=Hyperparameters(n_epochs=2, batch_size=8, lora_rank=4),
    )
    lines, _ = _run(
        [sys.executable, "-m", "openft.train.run", str(_write_config(config, tmp_path))], tmp_path
    )
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "message" and kinds[-1] == "done"
    assert [line["step"] for line in _of_type(lines, "metrics")] == [1, 2, 3, 4, 5, 6]
    assert all(line["total_steps"] == 6 for line in _of_type(lines, "metrics"))
    assert set(_of_type(lines, "metrics")[0]["data"]) == {"train_loss", "train_mean_token_accuracy"}
    assert set(_of_type(lines, "metrics")[2]["data"]) == {
        "train_loss",
        "train_mean_token_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "full_valid_loss",
        "full_valid_mean_token_accuracy",
    }
    checkpoints = _of_type(lines, "checkpoint")
    assert [(c["step"], c["epoch"]) for c in checkpoints] == [(3, 1), (6, 2)]
    position = {(line["type"], line.get("step")): i for i, line in enumerate(lines)}
    assert position[("metrics", 3)] < position[("checkpoint", 3)] < position[("metrics", 4)]
    assert Path(checkpoints[0]["path"], "adapter_model.safetensors").is_file()
    done = lines[-1]
    assert done["status"] == "succeeded" and done["trained_tokens"] > 0
    assert Path(done["final_path"], "adapter_model.safetensors").is_file()


def _start(config_path: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "openft.train.run", str(config_path), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _steps_until(
    process: subprocess.Popen[str], control: Path, word: str
) -> tuple[int, list[dict[str, Any]]]:
    """Read reports; after the first metrics line, write `word` into the control file. Returns that step."""
    assert process.stdout is not None
    lines: list[dict[str, Any]] = []
    asked_at = 0
    for raw in process.stdout:
        lines.append(json.loads(raw))
        if lines[-1]["type"] == "metrics" and not asked_at:
            asked_at = lines[-1]["step"]
            control.write_text(word)
    assert process.wait(timeout=TIMEOUT_S) == 0, process.stderr.read() if process.stderr else ""
    return asked_at, lines


def test_cancel_and_pause_through_the_control_file(
    tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path, config_for: Any
) -> None:
    train_file, _ = small_data
    config = config_for(
        tiny_model, train_file, tmp_path / "out", hp=Hyperparameters(n_epochs=3, batch_size=2, lora_rank=4)
    )
    config_path = _write_config(config, tmp_path)
    control = tmp_path / "out" / "control"

    asked_at, lines = _steps_until(_start(config_path), control, "cancel")
    last_step = _of_type(lines, "metrics")[-1]["step"]
    assert asked_at <= last_step <= asked_at + 2  # within a step or two
    assert lines[-1] == {
        "type": "done",
        "status": "cancelled",
        "trained_tokens": lines[-1]["trained_tokens"],
        "final_path": None,
    }

    # The word left by the cancelled run is from an earlier run: the next run removes it when it starts.
    asked_at, lines = _steps_until(_start(config_path), control, "pause")
    paused_at = _of_type(lines, "metrics")[-1]["step"]
    done = lines[-1]
    assert (done["status"], Path(done["final_path"]).name) == ("paused", f"step-{paused_at}")
    assert (Path(done["final_path"]) / "trainer_state.pt").is_file()

    assert control.read_text() == "pause"  # still there; the resumed run must not pause on it
    lines, _ = _run(
        [sys.executable, "-m", "openft.train.run", str(config_path), "--resume-from", done["final_path"]],
        tmp_path,
    )
    steps = [line["step"] for line in _of_type(lines, "metrics")]
    assert steps == list(range(paused_at + 1, config.n_epochs * 12 + 1))
    assert lines[-1]["status"] == "succeeded"


def test_a_bad_config_fails_with_a_readable_last_line(tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"base_model_path": "/nowhere"}))
    done = subprocess.run(
        [sys.executable, "-m", "openft.train.run", str(config_path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("openft.train: error: incomplete config")
    assert json.loads(done.stdout.splitlines()[-1])["level"] == "error"


def test_two_processes_match_one(reference_run: Any, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo) and the same global batch ends where one process ends.

    Both in fp32: bf16 products round differently when a step's examples are split another way, which
    would hide the distributed algorithm's own exactness behind bf16's rounding.
    """
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft

    one_config = dataclasses.replace(reference_run.config, output_dir=str(tmp_path / "one"), precision="fp32")
    one_reporter = MemoryReporter()
    one_result = train_sft(one_config, one_reporter)
    config = dataclasses.replace(one_config, output_dir=str(tmp_path / "out"))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    args = [
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "openft.train.run",
        str(_write_config(config, tmp_path)),
    ]
    lines, _ = _run(args, tmp_path)
    assert len(_of_type(lines, "done")) == 1  # only rank 0 reports
    losses = [line["data"]["train_loss"] for line in _of_type(lines, "metrics")]
    assert losses == pytest.approx(one_reporter.train_losses, rel=1e-4)
    two = load_file(str(tmp_path / "out" / "final" / "adapter_model.safetensors"))
    one = load_file(str(Path(one_result.final_path) / "adapter_model.safetensors"))
    # Sums in another order round differently, and Adam magnifies that on near-zero gradients: allow a
    # fraction of one step's size (lr 3e-3) per weight, and require agreement on average.
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-3)
        assert (two[name] - one[name]).abs().mean() < 1e-5, name
    assert lines[-1]["trained_tokens"] == one_result.trained_tokens
