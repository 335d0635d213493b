"""A job with a validation file ends with an evaluation: base against fine-tuned, as an event and a report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from typer.testing import CliRunner

from openft.cli.main import app
from tests.conftest import LiveServer, ServerFactory
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_event, wait_for_job

ANSWER = "Paris is lovely."
TRAIN_QUESTIONS = [f"Tell me about city number {i}." for i in range(10)]
VALID_QUESTIONS = ["What do you think of Paris?", "Say something nice.", "Which city?", "Hello there."]


def _examples(questions: list[str]) -> list[dict[str, object]]:
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]}
        for q in questions
    ]


def _fixed_answer_job(client: OpenAI, *, validation: bool = True) -> str:
    """Full fine-tuning that learns one fixed answer in 30 steps; the base model never says it."""
    training_file = upload_examples(client, _examples(TRAIN_QUESTIONS))
    validation_file = (
        upload_examples(client, _examples(VALID_QUESTIONS), "valid.jsonl") if validation else None
    )
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        validation_file=validation_file,
        seed=0,
        hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 3},
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    return job.id


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.verdicts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        verdict = dict(attrs).get("data-verdict")
        if tag == "tr" and verdict:
            self.verdicts.append(verdict)


@pytest.mark.slow
def test_a_succeeded_job_is_evaluated_on_its_validation_file(
    server_factory: ServerFactory, tiny_model_dir: Path, tmp_path: Path
) -> None:
    server = start_job_server(server_factory, tiny_model_dir)
    client = server.client()
    job_id = _fixed_answer_job(client)

    message = wait_for_event(client, job_id, "Evaluation on 4 validation examples: ")
    assert "exact match: base 0.00 → fine-tuned 1.00" in message, message
    assert "4 improved, 0 regressed" in message
    events = list(client.fine_tuning.jobs.list_events(job_id, limit=100))
    assert events[0].message == message  # after "The job has successfully completed": the job did not wait
    assert events[1].message == "The job has successfully completed"
    data = events[0].data
    assert (
        data is not None
        and data["kind"] == "evaluation"  # what `openft jobs follow` waits for
        and data["baseline"]["exact_match"] == 0.0
        and data["fine_tuned"]["exact_match"] == 1.0
    )

    model = client.fine_tuning.jobs.retrieve(job_id).fine_tuned_model
    evaluation = _get(server, f"/fine_tuning/jobs/{job_id}/evaluation").json()
    assert evaluation["object"] == "openft.eval.comparison" and evaluation["job_id"] == job_id
    assert evaluation["candidate"]["label"] == model and evaluation["baseline"]["label"] == "openft-tiny"
    rows = evaluation["rows"]
    assert [row["case"]["reference"] for row in rows] == [ANSWER] * 4
    assert all(row["candidate"]["text"] == ANSWER and row["baseline"]["text"] != ANSWER for row in rows)
    # The reference answer is far more likely under the fine-tuned model.
    assert evaluation["candidate"]["mean_reference_loss"] < evaluation["baseline"]["mean_reference_loss"] / 4

    report = _get(server, f"/fine_tuning/jobs/{job_id}/evaluation/report")
    assert report.headers["content-type"].startswith("text/html")
    parsed = _Rows()
    parsed.feed(report.text)
    assert parsed.verdicts == ["improved"] * 4

    # The same from the command line: the table and headline, and the report saved.
    saved = tmp_path / "report.html"
    shown = CliRunner().invoke(
        app,
        ["jobs", "evaluation", job_id, f"--base-url={server.base_url}", f"--out={saved}"],
        terminal_width=200,
    )
    assert shown.exit_code == 0, shown.output
    assert "exact match: base 0.00 → fine-tuned 1.00" in shown.output and "4 improved" in shown.output
    assert saved.read_text() == report.text


@pytest.mark.slow
def test_no_evaluation_without_a_validation_file_and_a_failed_one_is_a_warning(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    # A time limit no evaluation meets: the job still succeeds, and a warning says why there is no report.
    server = start_job_server(server_factory, tiny_model_dir, job_eval_timeout_s=0.01)
    client = server.client()
    evaluated = _fixed_answer_job(client)
    warning = wait_for_event(client, evaluated, "Evaluation on the validation file failed", level="warn")
    assert "OPENFT_JOB_EVAL_TIMEOUT_S" in warning
    assert client.fine_tuning.jobs.retrieve(evaluated).status == "succeeded"
    missing = _get(server, f"/fine_tuning/jobs/{evaluated}/evaluation", expect=404).json()["error"]
    assert "still running or failed" in missing["message"]

    plain = _fixed_answer_job(client, validation=False)
    missing = _get(server, f"/fine_tuning/jobs/{plain}/evaluation/report", expect=404).json()["error"]
    assert missing["message"] == (
        f"Fine-tuning job {plain} has no evaluation: it has no validation file; "
        "evaluations run on a job's validation file when it succeeds"
    )
    assert missing["param"] == "fine_tuning_job_id"
    with pytest.raises(openai.NotFoundError):  # the same job id in another project is no job at all
        client.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    unknown = _get(server, "/fine_tuning/jobs/ftjob-doesnotexist/evaluation", expect=404).json()["error"]
    assert unknown["message"] == "No such FineTuningJob object: ftjob-doesnotexist"


@pytest.mark.slow
def test_the_evaluation_answers_what_chat_completions_answers_at_temperature_0(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    """One generation path: every answer in a job's evaluation, the base model's and the fine-tuned one's,
    is what /v1/chat/completions answers for the same messages and model at temperature 0 with the
    evaluation's token budget, down to whether it hit that budget."""
    from transformers import AutoTokenizer

    from openft.comparison.runners import default_max_tokens

    server = start_job_server(server_factory, tiny_model_dir)
    client = server.client()
    job_id = _fixed_answer_job(client)
    wait_for_event(client, job_id, "Evaluation on 4 validation examples: ")
    evaluation = _get(server, f"/fine_tuning/jobs/{job_id}/evaluation").json()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))

    answered = {}
    for role in ("baseline", "candidate"):
        model = evaluation[role]["label"]
        for row in evaluation["rows"]:
            reference = row["case"]["reference"]
            budget = default_max_tokens(len(tokenizer.encode(reference, add_special_tokens=False)))
            chat = client.chat.completions.create(
                model=model, messages=row["case"]["messages"], temperature=0, max_tokens=budget
            )
            choice = chat.choices[0]
            answered[role, row["case"]["line"]] = (choice.message.content, choice.finish_reason == "length")
    evaluated = {
        (role, row["case"]["line"]): (row[role]["text"], row[role]["truncated"])
        for role in ("baseline", "candidate")
        for row in evaluation["rows"]
    }
    assert answered == evaluated
    # Both models answered, differently: the comparison is between two models, not one twice.
    assert {text for (role, _), (text, _) in evaluated.items() if role == "candidate"} == {ANSWER}
    assert all(text and text != ANSWER for (role, _), (text, _) in evaluated.items() if role == "baseline")


def _get(server: LiveServer, path: str, expect: int = 200) -> httpx.Response:
    response = httpx.get(f"{server.base_url}{path}", headers={"Authorization": "Bearer local"}, timeout=30)
    assert response.status_code == expect, response.text
    return response
