"""The SFT recipe end to end on the tiny model: outputs, weights, determinism, resume, continue, full FT."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openft.train.adapters import load_base_model, load_for_inference
from openft.train.config import SFTConfig
from openft.train.examples import load_examples
from openft.train.reporting import FULL_VALID_LOSS, VALID_LOSS, MemoryReporter
from openft.train.sft import train_sft
from openft.train.spec import SupervisedHyperparameters as Hyperparameters

pytestmark = pytest.mark.slow


def _adapter_weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(checkpoint) / "adapter_model.safetensors"))


def test_metrics_every_step_validation_every_few_and_full_at_epoch_ends(reference_run: Any) -> None:
    steps = reference_run.reporter.steps
    assert [step for step, _, _ in steps] == list(range(1, 25))
    assert {total for _, total, _ in steps} == {24}
    with_valid = [step for step, _, values in steps if VALID_LOSS in values]
    with_full = [step for step, _, values in steps if FULL_VALID_LOSS in values]
    assert with_valid == [4, 6, 8, 12, 16, 18, 20, 24]
    assert with_full == [6, 12, 18, 24]
    losses = reference_run.reporter.train_losses
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4  # it learns


def test_results_csv_has_openais_header_and_a_row_per_step(reference_run: Any) -> None:
    with (Path(reference_run.config.output_dir) / "results.csv").open() as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    assert [int(row[0]) for row in rows[1:]] == list(range(1, 25))
    assert rows[1][3:] == ["", ""]
    assert rows[4][3] and rows[4][4]  # step 4 ran the validation batch
    assert float(rows[1][1]) == pytest.approx(reference_run.reporter.train_losses[0], abs=1e-5)


def test_epoch_checkpoints_last_three_kept_and_final(reference_run: Any) -> None:
    out = Path(reference_run.config.output_dir)
    assert [(step, epoch) for step, epoch, _, _ in reference_run.reporter.checkpoints] == [
        (6, 1),
        (12, 2),
        (18, 3),
        (24, 4),
    ]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-12", "step-18", "step-24"]
    step_24 = out / "checkpoints" / "step-24"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "openft_config.json",
        "base_model.json",
        "trainer_state.pt",
    ):
        assert (step_24 / name).is_file(), name
    assert SFTConfig.load(step_24 / "openft_config.json") == reference_run.config
    assert (
        json.loads((step_24 / "base_model.json").read_text())["path"] == reference_run.config.base_model_path
    )
    final = out / "final"
    assert reference_run.result.final_path == str(final)
    assert (final / "adapter_model.safetensors").read_bytes() == (
        step_24 / "adapter_model.safetensors"
    ).read_bytes()
    assert not (final / "trainer_state.pt").exists()
    metrics = reference_run.reporter.checkpoints[-1][3]
    assert metrics["step"] == 24 and FULL_VALID_LOSS in metrics and VALID_LOSS in metrics


def test_trained_tokens_are_epochs_times_file_tokens(reference_run: Any, tiny_model: Path) -> None:
    from openft.train.adapters import load_tokenizer

    config = reference_run.config
    examples = load_examples(Path(config.training_file), load_tokenizer(tiny_model), config.max_seq_length)
    assert reference_run.result.trained_tokens == config.n_epochs * sum(e.n_tokens for e in examples)


def test_lora_trains_the_adapter_and_leaves_the_base_alone(reference_run: Any, tiny_model: Path) -> None:
    base = load_base_model(tiny_model).state_dict()
    model, _ = load_for_inference(reference_run.result.final_path)
    for name, tensor in model.get_base_model().state_dict().items():
        if "lora_" in name:
            continue
        key = name.replace(".base_layer", "")
        assert torch.equal(tensor, base[key]), name
    lora_b = [t for n, t in _adapter_weights(reference_run.result.final_path).items() if "lora_B" in n]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: every one moved


def test_same_seed_same_losses_step_for_step(reference_run: Any, tmp_path: Path) -> None:
    reporter = MemoryReporter()
    train_sft(dataclasses.replace(reference_run.config, output_dir=str(tmp_path)), reporter)
    assert reporter.train_losses == reference_run.reporter.train_losses


def test_pause_then_resume_ends_where_an_uninterrupted_run_ends(reference_run: Any, tmp_path: Path) -> None:
    config = dataclasses.replace(reference_run.config, output_dir=str(tmp_path))
    first = MemoryReporter(stop_at={9: "pause"})
    paused = train_sft(config, first)
    assert paused.status == "paused"
    assert paused.final_path == str(tmp_path / "checkpoints" / "step-9")
    assert [step for step, _, _ in first.steps] == list(range(1, 10))

    second = MemoryReporter()
    done = train_sft(config, second, resume_from=Path(paused.final_path))
    assert done.status == "succeeded"
    assert [step for step, _, _ in second.steps] == list(range(10, 25))
    assert second.train_losses == pytest.approx(reference_run.reporter.train_losses[9:], rel=1e-5)
    assert done.trained_tokens == reference_run.result.trained_tokens
    resumed, reference = _adapter_weights(done.final_path), _adapter_weights(reference_run.result.final_path)
    assert resumed.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6)
    with (tmp_path / "results.csv").open() as stream:
        assert [row[0] for row in csv.reader(stream)][1:] == [str(s) for s in range(1, 25)]
    assert not (tmp_path / "checkpoints" / "step-9").exists()  # superseded by later epoch checkpoints


def test_cancel_stops_between_steps(reference_run: Any, tmp_path: Path) -> None:
    reporter = MemoryReporter(stop_at={3: "cancel"})
    result = train_sft(dataclasses.replace(reference_run.config, output_dir=str(tmp_path)), reporter)
    assert (result.status, result.final_path) == ("cancelled", None)
    assert [step for step, _, _ in reporter.steps] == [1, 2, 3]
    assert not (tmp_path / "final").exists()


def test_continue_from_a_previous_adapter(
    reference_run: Any, tiny_model: Path, tmp_path: Path, config_for: Any
) -> None:
    config = config_for(
        tiny_model,
        Path(reference_run.config.training_file),
        tmp_path,
        hp=Hyperparameters(n_epochs=1, batch_size=4),
        init_adapter_path=reference_run.result.final_path,
    )
    assert (config.method, config.lora_rank) == ("lora", 8)
    reporter = MemoryReporter()
    assert train_sft(config, reporter).status == "succeeded"
    fresh_start = reference_run.reporter.train_losses[0]
    assert reporter.train_losses[0] < 0.8 * fresh_start  # it starts from what the adapter learned
    before, after = _adapter_weights(reference_run.result.final_path), _adapter_weights(tmp_path / "final")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)


def test_full_fine_tuning_changes_the_base_weights_and_truncates(
    tiny_model: Path, small_data: tuple[Path, Path], tmp_path: Path, config_for: Any
) -> None:
    train_file, _ = small_data
    config = config_for(
        tiny_model,
        train_file,
        tmp_path,
        hp=Hyperparameters(n_epochs=1, batch_size=4, full_finetune=True, max_seq_length=96),
    )
    reporter = MemoryReporter()
    result = train_sft(config, reporter)
    assert result.status == "succeeded"
    assert (tmp_path / "final" / "model.safetensors").is_file()
    assert not (tmp_path / "final" / "adapter_config.json").exists()
    tuned, _ = load_for_inference(result.final_path)
    base = load_base_model(tiny_model).state_dict()
    changed = [name for name, t in tuned.state_dict().items() if not torch.equal(t, base[name])]
    assert "model.layers.0.mlp.down_proj.weight" in changed and "model.embed_tokens.weight" in changed
    from openft.train.adapters import load_tokenizer

    uncut = load_examples(train_file, load_tokenizer(tiny_model), 2048)
    assert max(e.n_tokens for e in uncut) > 96  # some examples were cut to 96 tokens
    assert result.trained_tokens == sum(min(e.n_tokens, 96) for e in uncut)
    # ... and the job is told which, once, before training.
    long_lines = [line for line, e in enumerate(uncut, start=1) if e.n_tokens > 96]
    warnings = [text for level, text in reporter.messages if level == "warn" and "cut from the end" in text]
    shown = ", ".join(map(str, long_lines[:5])) + (", ..." if len(long_lines) > 5 else "")
    n_lost = sum(e.n_tokens - 96 for e in uncut if e.n_tokens > 96)
    assert len(long_lines) > 1 and len(warnings) == 1
    assert warnings[0].startswith(f"{len(long_lines)} training examples are longer than 96 tokens")
    assert f"({n_lost} tokens in all; line {shown})" in warnings[0] and "max_seq_length" in warnings[0]
