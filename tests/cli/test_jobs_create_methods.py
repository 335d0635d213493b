"""`openft jobs create --method dpo|reinforcement` against a live server: the job echoes what the
options asked for, and a wrong combination of options is a usage error before anything is uploaded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.cli.conftest import run_jobs

if TYPE_CHECKING:
    from click.testing import Result
    from openai import OpenAI

    from tests.conftest import LiveServer

GRADER = {
    "type": "string_check",
    "name": "team",
    "input": "{{sample.output_json.team}}",
    "reference": "{{item.team}}",
    "operation": "eq",
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "route",
        "schema": {
            "type": "object",
            "properties": {"team": {"type": "string"}},
            "required": ["team"],
            "additionalProperties": False,
        },
    },
}


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def preference_pairs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"Tell me about item {i}."}]},
            "preferred_output": [{"role": "assistant", "content": "Gladly, here it is."}],
            "non_preferred_output": [{"role": "assistant", "content": "No."}],
        }
        for i in range(n)
    ]


def routing_prompts(n: int) -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "user", "content": f"My laptop broke ({i}). Who helps?"}], "team": "tech"}
        for i in range(n)
    ]


def created_job_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    created = re.search(r"Created (ftjob-\w+)", result.output)
    assert created, result.output
    return created.group(1)


def stop_training(client: OpenAI, job_id: str) -> None:
    """Cancel the job, unless it has already ended (openft-tiny trains ten examples in seconds)."""
    try:
        client.fine_tuning.jobs.cancel(job_id)
    except openai.BadRequestError as exc:
        assert "can no longer be cancelled" in exc.message, exc.message


def table_row(output: str, key: str) -> str:
    """The value of one row of the job table (`│ key │ value │`)."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 4 and cells[1] == key:
            return cells[2]
    raise AssertionError(f"no {key} row in:\n{output}")


def test_a_dpo_job_from_a_local_preference_file_echoes_beta_and_sft_weight(
    cli_server: LiveServer, tmp_path: Path
) -> None:
    prefs = write_lines(tmp_path / "prefs.jsonl", preference_pairs(10))
    result = run_jobs(
        cli_server.base_url,
        "create",
        "--model=openft-tiny",
        f"--training-file={prefs}",
        "--method=dpo",
        "--beta=0.2",
        "--sft-weight=0.5",
        "--n-epochs=1",
    )
    job_id = created_job_id(result)
    client = cli_server.client()
    stop_training(client, job_id)  # the echo is what this test is about, not the training
    job = client.fine_tuning.jobs.retrieve(job_id).to_dict()
    assert job["method"]["type"] == "dpo" and "supervised" not in job["method"]
    echoed = job["method"]["dpo"]["hyperparameters"]
    assert (echoed["beta"], echoed["sft_weight"], echoed["n_epochs"]) == (0.2, 0.5, 1)
    assert client.files.retrieve(job["training_file"]).filename == "prefs.jsonl"
    assert table_row(result.output, "method") == "dpo"
    assert "beta=0.2" in table_row(result.output, "hyperparameters")
    shown = run_jobs(cli_server.base_url, "get", job_id)
    assert shown.exit_code == 0, shown.output
    assert table_row(shown.output, "method") == "dpo" and "sft_weight=0.5" in shown.output


def test_a_reinforcement_job_echoes_its_grader_file_and_options(
    cli_server: LiveServer, tmp_path: Path
) -> None:
    prompts = write_lines(tmp_path / "prompts.jsonl", routing_prompts(10))
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(GRADER))
    response_format = tmp_path / "format.json"
    response_format.write_text(json.dumps(RESPONSE_FORMAT))
    result = run_jobs(
        cli_server.base_url,
        "create",
        "--model=openft-tiny",
        f"--training-file={prompts}",
        "--method=reinforcement",
        f"--grader={grader}",
        f"--response-format={response_format}",
        "--compute-multiplier=2",
        "--eval-interval=3",
        "--eval-samples=auto",
        "--reasoning-effort=low",
    )
    job_id = created_job_id(result)
    client = cli_server.client()
    stop_training(client, job_id)
    method = client.fine_tuning.jobs.retrieve(job_id).to_dict()["method"]
    assert method["type"] == "reinforcement"
    assert method["reinforcement"]["grader"] == GRADER
    assert method["reinforcement"]["response_format"] == RESPONSE_FORMAT
    echoed = method["reinforcement"]["hyperparameters"]
    assert (echoed["compute_multiplier"], echoed["eval_interval"], echoed["reasoning_effort"]) == (
        2,
        3,
        "low",
    )
    assert table_row(result.output, "method") == "reinforcement"
    assert table_row(result.output, "grader") == "string_check grader 'team'"


@pytest.fixture
def option_files(tmp_path: Path) -> dict[str, Path]:
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(GRADER))
    not_json = tmp_path / "grader.txt"
    not_json.write_text("type: string_check\n")
    bad_operation = tmp_path / "bad-grader.json"
    bad_operation.write_text(json.dumps(GRADER | {"operation": "equals"}))
    return {
        "train": write_lines(tmp_path / "train.jsonl", routing_prompts(4)),
        "grader": grader,
        "not_json": not_json,
        "bad_operation": bad_operation,
        "missing": tmp_path / "missing.json",
    }


# (options, what the usage error says); {name} is a path from `option_files`.
USAGE_ERRORS = [
    (["--method=sft"], "'sft' is not one of supervised, dpo, reinforcement"),
    (["--beta=0.2"], "--beta needs --method dpo"),
    (["--method=dpo", "--eval-samples=4"], "--eval-samples needs --method reinforcement"),
    (["--method=reinforcement", "--grader={grader}", "--sft-weight=1"], "--sft-weight needs --method dpo"),
    (["--method=dpo", "--grader={grader}"], "--grader needs --method reinforcement"),
    (["--method=reinforcement"], "--method reinforcement needs --grader"),
    (["--method=dpo", "--beta=3"], 'Invalid value for --beta: beta must be "auto" or a number above 0'),
    (["--method=dpo", "--beta=high"], "Invalid value for --beta: 'high' is neither 'auto' nor a number"),
    (["--method=dpo", "--sft-weight=11"], "Invalid value for --sft-weight: sft_weight must be null or"),
    (["--method=reinforcement", "--grader={missing}"], "Invalid value for --grader: {missing}: no such file"),
    (
        ["--method=reinforcement", "--grader={not_json}"],
        "Invalid value for --grader: {not_json} is not a JSON",
    ),
    (
        ["--method=reinforcement", "--grader={bad_operation}"],
        "{bad_operation}: invalid grader (at operation)",
    ),
    (
        ["--method=reinforcement", "--grader={grader}", "--reasoning-effort=extreme"],
        "Invalid value for --reasoning-effort: reasoning_effort must be one of",
    ),
    (["--method=reinforcement", "--grader={grader}", "--full"], "Invalid value for --full: reinforcement"),
]


def test_a_wrong_method_option_is_a_usage_error_before_any_upload(
    cli_server: LiveServer, option_files: dict[str, Path]
) -> None:
    names = {name: str(path) for name, path in option_files.items()}
    before = [f.id for f in cli_server.client().files.list()]
    for options, message in USAGE_ERRORS:
        args = [option.format(**names) for option in options]
        result = run_jobs(
            cli_server.base_url,
            "create",
            "--model=openft-tiny",
            f"--training-file={option_files['train']}",
            *args,
        )
        output = " ".join(result.output.replace("│", " ").split())  # the usage box, unwrapped
        assert result.exit_code == 2, (args, result.output)
        assert message.format(**names) in output, (args, output)
        assert "Uploaded" not in output
    assert [f.id for f in cli_server.client().files.list()] == before
