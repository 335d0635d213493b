"""`openft data check` and `openft data split` through the command line, on the real built-in model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openft.cli.data import data_app

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # One models directory for the session: the built-in model is built once, on first use.
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path_factory.getbasetemp() / "openft-data"))


def test_check_of_a_clean_file_exits_0_and_reports(tmp_path: Path) -> None:
    result = runner.invoke(data_app, ["check", str(FIXTURES / "marv.jsonl"), "--no-estimate-time"])
    assert result.exit_code == 0, result.output
    assert "chat, 10 examples (10 valid)" in result.output
    assert "epochs: 10 (auto" in result.output
    assert "OK: a job on openft-tiny would accept these files." in result.output


def test_check_json_has_the_report_and_the_blocking_error(tmp_path: Path) -> None:
    path = FIXTURES / "errors" / "invalid_weight.jsonl"
    result = runner.invoke(data_app, ["check", str(path), "--json", "--no-estimate-time"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False and data["model"] == "openft-tiny"
    assert data["blocking_error"]["code"] == "invalid_training_file"
    assert [error["code"] for error in data["training"]["errors"]] == ["invalid_weight"]
    assert data["training"]["preview"]["spans"][1] == {
        "text": "Paris.<|im_end|>",
        "trained": True,
        "n_tokens": 7,
    }


def test_check_with_validation_and_time_estimate(tmp_path: Path) -> None:
    validation = FIXTURES / "lint" / "validation_leakage.jsonl"
    result = runner.invoke(data_app, ["check", str(FIXTURES / "marv.jsonl"), "--validation", str(validation)])
    assert result.exit_code == 0, result.output
    assert "validation_leakage" in result.output
    assert "training time here: about" in result.output
    assert "full fine-tuning steps of openft-tiny on cpu (" in result.output  # and its precision


def test_split_writes_both_files(tmp_path: Path) -> None:
    source = tmp_path / "marv.jsonl"
    shutil.copy(FIXTURES / "marv.jsonl", source)
    result = runner.invoke(data_app, ["split", str(source), "--test-fraction", "0.2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "marv_train.jsonl").read_text().splitlines()) == 8
    assert len((tmp_path / "marv_test.jsonl").read_text().splitlines()) == 2


def test_check_with_a_model_that_does_not_load_says_so_in_one_line() -> None:
    result = runner.invoke(data_app, ["check", str(FIXTURES / "marv.jsonl"), "--model", "no-such-model"])
    assert result.exit_code == 2
    assert result.output.startswith("cannot load the tokenizer of no-such-model: ")
    assert len(result.output.strip().splitlines()) == 1


def test_check_takes_the_context_from_the_model_config_when_the_tokenizer_has_none(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GGUF tokenizers (and many others) say "no limit"; the model's config knows its context.
    from openft.models.builtin import ensure_builtin_model
    from openft.models.catalog import Catalog

    model_dir = tmp_path / "no-limit"
    shutil.copytree(ensure_builtin_model("openft-tiny", tmp_path / "build"), model_dir)
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    tokenizer_config.pop("model_max_length", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    config = json.loads((model_dir / "config.json").read_text())
    config["max_position_embeddings"] = 1024
    (model_dir / "config.json").write_text(json.dumps(config))
    Catalog(tmp_path_factory.getbasetemp() / "openft-data" / "models").add_local("no-limit", model_dir)

    arguments = ["check", str(FIXTURES / "marv.jsonl"), "--model", "no-limit", "--json", "--no-estimate-time"]
    result = runner.invoke(data_app, arguments)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["training"]["tokens"]["context_length"] == 1024


def _prompt_file(path: Path, n: int, *, without_answer_field: int | None = None) -> Path:
    lines = []
    for i in range(n):
        line: dict[str, object] = {"messages": [{"role": "user", "content": f"Item {i}?"}], "answer": f"a{i}"}
        if i + 1 == without_answer_field:
            del line["answer"]
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n")
    return path


def _grader(path: Path) -> Path:
    grader = {"type": "string_check", "name": "eq", "input": "{{sample.output_text}}"}
    path.write_text(json.dumps({**grader, "reference": "{{item.answer}}", "operation": "eq"}))
    return path


def test_check_of_a_prompt_file_with_its_grader(tmp_path: Path) -> None:
    prompts, grader = _prompt_file(tmp_path / "p.jsonl", 10), _grader(tmp_path / "g.json")
    args = ["check", str(prompts), "--method", "reinforcement", "--grader", str(grader)]
    result = runner.invoke(data_app, args)
    assert result.exit_code == 0, result.output
    assert "prompt, 10 examples (10 valid)" in result.output
    assert "prompt tokens per line:" in result.output
    assert "steps: " in result.output and "answers sampled per prompt: 4" in result.output
    assert "tokens per epoch" not in result.output  # no supervised estimate
    assert "OK: a reinforcement job on openft-tiny would accept these files." in result.output


def test_check_json_names_a_line_without_the_graders_field(tmp_path: Path) -> None:
    prompts = _prompt_file(tmp_path / "p.jsonl", 10, without_answer_field=4)
    args = ["check", str(prompts), "--grader", str(_grader(tmp_path / "g.json")), "--json"]
    result = runner.invoke(data_app, args)
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["method"] == "reinforcement" and data["estimate"] is None
    assert data["reinforcement"]["samples_per_prompt"] == 4
    [error] = data["training"]["errors"]
    assert error["code"] == "missing_grader_field"
    assert (error["first"][0]["line"], error["first"][0]["field"]) == (4, "answer")


def test_a_grader_with_another_method_is_a_usage_error(tmp_path: Path) -> None:
    prompts, grader = _prompt_file(tmp_path / "p.jsonl", 10), _grader(tmp_path / "g.json")
    result = runner.invoke(data_app, ["check", str(prompts), "--method", "dpo", "--grader", str(grader)])
    assert result.exit_code == 2
    assert "--grader is for --method reinforcement" in result.output
