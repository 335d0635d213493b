"""Checkpoint directories: what is in one, which ones are kept, and the `final/` model.

Where each file goes is `openft.train.spec.RunLayout`'s (torch-free, so the service reads it too):

    <output_dir>/checkpoints/step-<N>/
        adapter_model.safetensors + adapter_config.json   (LoRA)   or   model.safetensors + config.json (full)
        tokenizer files
        openft_config.json   the resolved SFTConfig
        base_model.json      {"name", "path", "method"} of the base model
        checkpoint.json      {"step", "epoch", "kind": "epoch" | "pause", "metrics"}
        trainer_state.pt     optimizer, scheduler, RNG and position: what a resume needs
    <output_dir>/final/      the last epoch's checkpoint without trainer_state.pt (hard links, no copy)

Epoch checkpoints: the newest `keep_last_n_checkpoints` stay. A pause checkpoint stays only until a
newer checkpoint supersedes it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from openft.train.adapters import save_model
from openft.train.config import SFTConfig
from openft.train.spec import CHECKPOINT_FILE, CONFIG_FILE, STATE_FILE, RunLayout

CheckpointKind = Literal["epoch", "pause"]


@dataclass
class TrainerState:
    """Where a run is: steps done and tokens trained so far."""

    step: int = 0
    trained_tokens: int = 0
    n_train_examples: int = 0
    rng: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    *,
    model: Any,
    tokenizer: Any,
    config: SFTConfig,
    state: TrainerState,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    epoch: int,
    kind: CheckpointKind,
    metrics: dict[str, float],
) -> Path:
    """Write a complete checkpoint into a temporary directory, then rename it into place."""
    final_dir = config.layout.checkpoint_dir(state.step)
    work_dir = final_dir.with_name(final_dir.name + ".partial")
    shutil.rmtree(work_dir, ignore_errors=True)
    save_model(model, tokenizer, work_dir, config)
    (work_dir / CONFIG_FILE).write_text(config.to_json())
    record = {"step": state.step, "epoch": epoch, "kind": kind, "metrics": metrics}
    (work_dir / CHECKPOINT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    state.rng = capture_rng()
    torch.save(
        {"state": asdict(state), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        work_dir / STATE_FILE,
    )
    shutil.rmtree(final_dir, ignore_errors=True)
    work_dir.rename(final_dir)
    return final_dir


def load_trainer_state(checkpoint: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> TrainerState:
    """Restore optimizer and scheduler in place and return the run's position."""
    saved = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    state = TrainerState(**saved["state"])
    restore_rng(state.rng)
    return state


def read_checkpoint_record(checkpoint: Path) -> dict[str, Any]:
    return dict(json.loads((checkpoint / CHECKPOINT_FILE).read_text()))


def prune_checkpoints(output_dir: Path, keep_last_n: int) -> list[Path]:
    """Remove epoch checkpoints beyond the newest `keep_last_n`, and superseded pause checkpoints."""
    found = []
    for path in RunLayout(output_dir).checkpoint_dirs():
        if path.is_dir() and (path / CHECKPOINT_FILE).is_file():
            found.append((read_checkpoint_record(path), path))
    found.sort(key=lambda item: item[0]["step"])
    newest_step = found[-1][0]["step"] if found else 0
    epochs = [path for record, path in found if record["kind"] == "epoch"]
    stale = epochs[: max(0, len(epochs) - keep_last_n)]
    stale += [path for record, path in found if record["kind"] == "pause" and record["step"] < newest_step]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def publish_final(checkpoint: Path, output_dir: Path) -> Path:
    """`<output_dir>/final/`: the checkpoint's model files, hard-linked (copied where links fail)."""
    final_dir = RunLayout(output_dir).final_dir
    work_dir = final_dir.with_name(final_dir.name + ".partial")
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    for source in checkpoint.iterdir():
        if source.is_file() and source.name != STATE_FILE:
            _link_or_copy(source, work_dir / source.name)
    shutil.rmtree(final_dir, ignore_errors=True)
    work_dir.rename(final_dir)
    return final_dir


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    if "python" in state:
        random.setstate(state["python"])
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)
