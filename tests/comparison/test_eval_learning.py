"""The promise: on held-out prompts the fine-tuned built-in model scores far above its base, and the
comparison, the JSON results and the HTML report all say so. Local runner, `openft eval`, and the SDK
runner against a live server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openft.cli.main import app
from openft.comparison.compare import ComparisonResult, compare
from openft.comparison.html_report import render_html
from openft.comparison.local_runner import LocalRunner, locate_model, model_ref
from openft.comparison.testset import read_test_set
from openft.inference.local import LocalEngine
from tests.comparison.conftest import TrainedModel
from tests.comparison.report_parser import parse_report
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow
cli = CliRunner()


def test_fine_tuned_model_beats_its_base(
    trained: TrainedModel, engine: LocalEngine, tmp_path: Path, record_property: Any
) -> None:
    cases = read_test_set(trained.test_file)
    tuned_dir = locate_model(str(trained.run_dir), trained.settings.models_dir)
    assert tuned_dir == (trained.run_dir / "final").resolve()
    started = time.perf_counter()
    result = compare(
        cases,
        candidate=LocalRunner(model_ref(tuned_dir), engine, label="fine-tuned"),
        baseline=LocalRunner(
            model_ref(locate_model("openft-tiny", trained.settings.models_dir)), engine, label="openft-tiny"
        ),
        test_file=str(trained.test_file),
    )
    eval_s = time.perf_counter() - started
    before, after = result.baseline.means["exact_match"], result.candidate.means["exact_match"]
    record_property("train_s", round(trained.train_s, 1))
    record_property("eval_s", round(eval_s, 1))
    print(
        f"\ntrained in {trained.train_s:.1f} s, evaluated in {eval_s:.1f} s; "
        + "; ".join(result.summary_lines())
    )

    assert result.metric_names == ["exact_match", "normalized_match", "token_f1"]
    assert before <= 0.05 and after >= 0.5
    assert result.headline == f"exact match: base {before:.2f} → fine-tuned {after:.2f}"
    assert result.count("improved") >= 0.5 * len(cases) and result.count("regressed") <= 2
    # The reference answers are far more likely under the fine-tuned model.
    base_loss, tuned_loss = result.baseline.mean_reference_loss, result.candidate.mean_reference_loss
    assert base_loss is not None and tuned_loss is not None
    assert tuned_loss < 0.5 * base_loss
    assert all(row.candidate.reference_loss is not None for row in result.rows)
    assert ComparisonResult.from_json(result.to_json()) == result

    report = parse_report(render_html(result))
    assert report.headline == result.headline
    assert [int(row.attributes["data-line"]) for row in report.rows] == [case.line for case in cases]
    for row, case in zip(report.rows, cases, strict=True):
        assert row.cells[2] == case.reference
    assert sum(row.attributes["data-verdict"] == "improved" for row in report.rows) == result.count(
        "improved"
    )


def test_a_lora_checkpoint_is_scored_against_its_base(
    trained: TrainedModel, engine: LocalEngine, tmp_path: Path
) -> None:
    """An adapter is applied to the base its base_model.json names: its losses differ from the base's."""
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft
    from openft.train.spec import SupervisedHyperparameters as Hyperparameters
    from tests.train.conftest import make_config

    small = _first_lines(trained.data_dir / "train.jsonl", tmp_path / "small.jsonl", 16)
    hp = Hyperparameters(n_epochs=1, batch_size=4, lora_rank=8)
    config = make_config(trained.base_dir, small, tmp_path / "lora", hp=hp)
    train_sft(config, MemoryReporter())
    checkpoint = next((tmp_path / "lora" / "checkpoints").glob("step-*"))
    assert (checkpoint / "adapter_config.json").is_file()
    cases = read_test_set(trained.test_file, max_examples=4)
    adapter = LocalRunner(model_ref(locate_model(str(checkpoint), trained.settings.models_dir)), engine)
    base = LocalRunner(model_ref(trained.base_dir), engine)
    # The engine applies the adapter on the base's weights: no merged copy.
    assert adapter.model.weights_path == base.model.weights_path and adapter.model.adapter_path
    adapter_losses = [answer.reference_loss for answer in adapter.answer(cases, max_tokens=4)]
    base_losses = [answer.reference_loss for answer in base.answer(cases, max_tokens=4)]
    assert all(loss is not None and loss > 0 for loss in adapter_losses + base_losses)
    assert adapter_losses != base_losses


def test_the_reference_loss_is_training_loss_on_the_answer(
    trained: TrainedModel, engine: LocalEngine
) -> None:
    """Same tokens and mask as a training example with one answer: the loss training would report."""
    import torch
    import torch.nn.functional as F

    from openft.train.adapters import load_for_inference
    from openft.train.examples import tokenize_example

    (case,) = read_test_set(trained.test_file, max_examples=1)
    example = {"messages": [*case.messages, {"role": "assistant", "content": case.reference}]}
    model, tokenizer = load_for_inference(trained.run_dir / "final")
    tokens = tokenize_example(tokenizer, example, max_seq_length=2048)
    ids = torch.tensor([tokens.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    scored = torch.tensor(tokens.loss_mask[1:], dtype=torch.bool)
    expected = F.cross_entropy(logits[scored], ids[0, 1:][scored]).item()
    (answer,) = LocalRunner(model_ref(trained.run_dir / "final"), engine).answer([case], max_tokens=1)
    assert answer.reference_loss == pytest.approx(expected, rel=1e-4)


def test_openft_eval_resolves_ft_names_without_a_server(trained: TrainedModel, tmp_path: Path) -> None:
    results, report = tmp_path / "results.json", tmp_path / "report.html"
    args = ["eval", "--model", trained.ft_name, "--test-file", str(trained.test_file), "--max-examples", "12"]
    args += ["--data-dir", str(trained.data_dir), "--json", str(results), "--out", str(report)]
    outcome = cli.invoke(app, args, env={"COLUMNS": "160"})
    assert outcome.exit_code == 0, outcome.output
    result = ComparisonResult.from_json(results.read_text())
    # Without --baseline, the base named in the ft: model's name.
    assert (result.baseline.label, result.candidate.label) == ("openft-tiny", trained.ft_name)
    assert len(result.rows) == 12 and result.candidate.means["exact_match"] >= 0.5
    assert result.headline in outcome.output and "reference loss" in outcome.output
    assert len(parse_report(report.read_text()).rows) == 12


def test_openft_eval_reports_bad_input_in_one_line(trained: TrainedModel, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
    base = ["eval", "--data-dir", str(trained.data_dir), "--baseline", "openft-tiny"]
    outcome = cli.invoke(app, [*base, "--model", str(trained.run_dir), "--test-file", str(bad)])
    assert outcome.exit_code == 1 and "bad.jsonl line 1" in outcome.output
    outcome = cli.invoke(
        app, [*base, "--model", "ft:openft-tiny:personal::nothere1", "--test-file", str(trained.test_file)]
    )
    assert outcome.exit_code == 1 and "does not exist" in outcome.output
    outcome = cli.invoke(
        app, [*base, "--model", "openft-tiny", "--test-file", str(trained.test_file), "--metric", "bleu"]
    )
    assert outcome.exit_code == 1 and "unknown metric 'bleu'" in outcome.output


def test_the_sdk_runner_through_a_live_server(
    trained: TrainedModel, engine: LocalEngine, tmp_path: Path
) -> None:
    server = LiveServer(trained.settings.model_copy(update={"inference_cpu_threads": 1})).start()
    try:
        results = tmp_path / "results.json"
        args = [
            "eval",
            "--model",
            trained.ft_name,
            "--baseline",
            "openft-tiny",
            "--base-url",
            server.base_url,
        ]
        args += ["--test-file", str(trained.test_file), "--max-examples", "8", "--json", str(results)]
        outcome = cli.invoke(app, args, env={"COLUMNS": "160"})
    finally:
        server.stop()
    assert outcome.exit_code == 0, outcome.output
    result = ComparisonResult.from_json(results.read_text())
    assert result.candidate.means["exact_match"] >= 0.5 and result.baseline.means["exact_match"] <= 0.25
    # The API has no loss for a given answer.
    assert result.candidate.mean_reference_loss is None and "n/a" in outcome.output
    # The server renders prompts exactly as the local runner does: the same greedy answers.
    cases = [row.case for row in result.rows]
    local = LocalRunner(model_ref(trained.run_dir / "final"), engine).answer(cases)
    agree = sum(row.candidate.text == answer.text for row, answer in zip(result.rows, local, strict=True))
    assert agree >= 7


def _first_lines(source: Path, target: Path, n: int) -> Path:
    target.write_text("".join(source.read_text().splitlines(keepends=True)[:n]))
    return target
