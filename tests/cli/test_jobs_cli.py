"""`openft jobs ...` against a live server with a worker: one real training job, followed and inspected,
plus a failed job, a cancelled job and the error paths. The tests of this module share the server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from openft.cli import job_follow
from openft.cli.jobs import jobs_app
from openft.schemas.jobs import EVALUATION_EVENT_KIND
from openft.train.synthetic import make_split, write_jsonl
from tests.cli.conftest import run_jobs
from tests.cli.proxy import Proxy

if TYPE_CHECKING:
    from click.testing import Result

    from tests.conftest import LiveServer

MODEL_NAME = re.compile(r"ft:openft-tiny:personal:cli:[0-9A-Za-z]{8}\b")


@pytest.fixture(scope="module")
def followed(cli_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, str]:
    """`jobs create` from local files with `--follow`, run once: its output and the job's id."""
    folder = tmp_path_factory.mktemp("cli-data")
    train, valid = make_split(12, 4, seed=3)
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "valid.jsonl", valid)
    result = run_jobs(
        cli_server.base_url,
        "create",
        "--model=openft-tiny",
        f"--training-file={folder / 'train.jsonl'}",
        f"--validation-file={folder / 'valid.jsonl'}",
        "--suffix=cli",
        "--n-epochs=1",
        "--batch-size=4",
        "--metadata=team=cli",
        "--follow",
    )
    created = re.search(r"Created (ftjob-\w+)", result.output)
    assert created, result.output
    # The job has a validation file, so an evaluation follows its success and adds the job's last event;
    # `follow` waits for it, so the tests, which compare whole event lists, can start at once.
    return result, created.group(1)


def test_create_uploads_local_files_and_follow_ends_with_the_model_name(
    cli_server: LiveServer, followed: tuple[Result, str]
) -> None:
    result, job_id = followed
    assert result.exit_code == 0, result.output
    output = result.output
    assert re.search(r"Uploaded .*train\.jsonl as file-\w+", output)
    assert re.search(r"Uploaded .*valid\.jsonl as file-\w+", output)
    assert f"Created fine-tuning job: {job_id}" in output
    assert "Step 3/3: training loss=" in output  # not a terminal: metrics lines are printed too
    assert re.search(rf"Succeeded: {job_id} -> {MODEL_NAME.pattern}", output), output
    assert "Traceback" not in output
    # The evaluation's event comes after `succeeded`; follow waited for it, and it is the job's last.
    assert "Evaluation on 4 validation examples:" in output
    assert output.index("The job has successfully completed") < output.index("Evaluation on 4 validation")
    newest = cli_server.client().fine_tuning.jobs.list_events(job_id, limit=1).data[0]
    assert newest.message.startswith("Evaluation on 4 validation examples:")

    job = cli_server.client().fine_tuning.jobs.retrieve(job_id)
    assert job.status == "succeeded" and job.metadata == {"team": "cli"}
    assert job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 4
    assert job.fine_tuned_model is not None and job.fine_tuned_model in output
    assert cli_server.client().files.retrieve(job.training_file).filename == "train.jsonl"


def test_list_get_events_and_checkpoints_show_the_job(
    cli_server: LiveServer, followed: tuple[Result, str]
) -> None:
    _, job_id = followed
    client = cli_server.client()
    job = client.fine_tuning.jobs.retrieve(job_id)
    url = cli_server.base_url

    listed = run_jobs(url, "list", "--metadata", "team=cli")
    assert listed.exit_code == 0 and job_id in listed.output and str(job.fine_tuned_model) in listed.output
    assert [j["id"] for j in json.loads(run_jobs(url, "list", "--json").stdout)] == [job_id]
    assert json.loads(run_jobs(url, "list", "--json", "--metadata", "team=other").stdout) == []

    shown = run_jobs(url, "get", job_id)
    assert shown.exit_code == 0
    for value in (
        job_id,
        "succeeded",
        job.training_file,
        str(job.validation_file),
        str(job.fine_tuned_model),
    ):
        assert value in shown.output
    assert (
        json.loads(run_jobs(url, "get", job_id, "--json").stdout)["fine_tuned_model"] == job.fine_tuned_model
    )

    events = client.fine_tuning.jobs.list_events(job_id, limit=5).data  # one page, not all
    table = run_jobs(url, "events", job_id, "--limit", "5")
    assert table.exit_code == 0
    assert all(e.id in table.output for e in events)
    assert table.output.index(events[-1].id) < table.output.index(events[0].id)  # oldest first
    assert "The job has successfully completed" in table.output
    raw = json.loads(run_jobs(url, "events", job_id, "--limit", "5", "--json").stdout)
    assert [e["id"] for e in raw] == [e.id for e in events]  # as the API sends them: newest first

    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job_id))
    shown = run_jobs(url, "checkpoints", job_id)
    assert shown.exit_code == 0 and checkpoints
    assert all(c.id in shown.output and c.fine_tuned_model_checkpoint in shown.output for c in checkpoints)
    raw = json.loads(run_jobs(url, "checkpoints", job_id, "--json").stdout)
    assert [c["step_number"] for c in raw] == [c.step_number for c in checkpoints]


def test_tables_keep_every_column_readable_at_80_columns(
    cli_server: LiveServer, followed: tuple[Result, str]
) -> None:
    _, job_id = followed
    client = cli_server.client()
    job = client.fine_tuning.jobs.retrieve(job_id)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job_id))
    narrow = {"OPENAI_BASE_URL": cli_server.base_url, "OPENAI_API_KEY": "test", "COLUMNS": "80"}
    listed = CliRunner().invoke(jobs_app, ["list"], env=narrow)
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    for value in (job_id, "succeeded", "openft-tiny", str(job.fine_tuned_model), "Status", "Model"):
        assert value in listed.output, (value, listed.output)
    shown = CliRunner().invoke(jobs_app, ["checkpoints", job_id], env=narrow)
    assert shown.exit_code == 0, shown.output
    for checkpoint in checkpoints:
        assert checkpoint.id in shown.output and checkpoint.fine_tuned_model_checkpoint in shown.output
        assert re.search(rf"Step +{checkpoint.step_number} *\n", shown.output), shown.output


def test_a_page_of_events_is_its_data_while_iterating_the_page_fetches_them_all(
    cli_server: LiveServer, followed: tuple[Result, str]
) -> None:
    # Why the README reads `.data`: the SDK's page object auto-paginates when iterated.
    _, job_id = followed
    page = cli_server.client().fine_tuning.jobs.list_events(job_id, limit=5)
    assert len(page.data) == 5 and len(list(page)) > 5


def test_follow_waits_for_the_evaluation_unless_told_not_to(
    cli_server: LiveServer, followed: tuple[Result, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, job_id = followed
    monkeypatch.setattr(job_follow, "EVALUATION_WAIT_S", 1.5)  # how long `follow` waits for it
    with _evaluation_not_reported_yet(cli_server, job_id):
        skipped = run_jobs(cli_server.base_url, "follow", job_id, "--no-wait-evaluation")
        assert skipped.exit_code == 0, skipped.output
        assert re.search(rf"Succeeded: {job_id} -> {MODEL_NAME.pattern}", skipped.output), skipped.output
        assert "Evaluation on" not in skipped.output and "Stopped waiting" not in skipped.output

        waited = run_jobs(cli_server.base_url, "follow", job_id)
        assert waited.exit_code == 0, waited.output
        assert f"Stopped waiting for the evaluation of {job_id}" in waited.output
    # Once the evaluation has reported, the default `follow` shows it and stops at once.
    shown = run_jobs(cli_server.base_url, "follow", job_id)
    assert "Evaluation on 4 validation examples:" in shown.output and "Stopped waiting" not in shown.output


@contextmanager
def _evaluation_not_reported_yet(server: LiveServer, job_id: str) -> Iterator[None]:
    """The job's events as they stand after its success and before its evaluation's event is written;
    the event is put back as it was afterwards."""
    from sqlalchemy import select

    from openft.store.tables import JobEventRow

    columns = [c.key for c in JobEventRow.__table__.columns]
    with server.ctx.db.session() as session:
        rows = session.scalars(select(JobEventRow).where(JobEventRow.job_id == job_id)).all()
        (event,) = [
            r for r in rows if (json.loads(r.data_json or "{}") or {}).get("kind") == EVALUATION_EVENT_KIND
        ]
        saved = {name: getattr(event, name) for name in columns}
        session.delete(event)
    try:
        yield
    finally:
        with server.ctx.db.session() as session:
            session.add(JobEventRow(**saved))


def test_invalid_hyperparameters_are_refused_before_any_upload(
    cli_server: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "train.jsonl"
    write_jsonl(path, make_split(10, 0, seed=2)[0])
    before = [f.id for f in cli_server.client().files.list()]
    for option, name in (
        ("--n-epochs=-2", "n_epochs"),
        ("--batch-size=0", "batch_size"),
        ("--learning-rate-multiplier=-1", "learning_rate_multiplier"),
    ):
        result = run_jobs(
            cli_server.base_url, "create", "--model=openft-tiny", f"--training-file={path}", option
        )
        assert result.exit_code == 2, result.output
        assert name in result.output and "Uploaded" not in result.output
    assert [f.id for f in cli_server.client().files.list()] == before


def test_follow_resumes_a_cut_stream_and_falls_back_to_polling(
    cli_server: LiveServer, followed: tuple[Result, str]
) -> None:
    _, job_id = followed
    messages = [
        e.message
        for e in cli_server.client().fine_tuning.jobs.list_events(job_id, limit=100)
        if e.type == "message"
    ]
    for mode in ("drop", "no-stream"):
        proxy = Proxy(cli_server.root_url, mode, drop_after=3).start()
        try:
            result = run_jobs(proxy.base_url, "follow", job_id)
        finally:
            proxy.stop()
        assert result.exit_code == 0, (mode, result.output)
        assert all(result.output.count(message) == 1 for message in messages), (mode, result.output)
        streams = proxy.streams()
        if mode == "drop":
            # Cut after the third event: the second request asks for what came after it.
            third = list(cli_server.client().fine_tuning.jobs.list_events(job_id, limit=100))[-3].id
            assert [last for _, last in streams] == [None, third]
        else:
            assert len(streams) == 1
            assert any(
                line.startswith("GET") and "/events?" in line and "stream" not in line
                for line, _ in proxy.requests
            )

    polled = run_jobs(cli_server.base_url, "follow", job_id, "--poll", "--json")
    lines = [json.loads(line) for line in polled.stdout.splitlines()]
    assert polled.exit_code == 0
    assert lines[-1]["id"] == job_id and lines[-1]["status"] == "succeeded"
    assert [e["message"] for e in lines[:-1] if e["type"] == "message"] == messages[::-1]


def test_a_job_that_fails_validation_ends_follow_with_exit_1_and_its_error(
    cli_server: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "completions.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n' * 10)
    result = run_jobs(
        cli_server.base_url,
        "create",
        "--model=openft-tiny",
        f"--training-file={path}",
        "--full",
        "--learning-rate-multiplier=0.5",
        "--seed=7",
        "--follow",
    )
    assert result.exit_code == 1, result.output
    created = re.search(r"Created (ftjob-\w+)", result.output)
    assert created, result.output
    job = cli_server.client().fine_tuning.jobs.retrieve(created.group(1))
    assert job.seed == 7 and job.status == "failed"
    assert job.to_dict()["hyperparameters"] == {
        "n_epochs": "auto",
        "batch_size": "auto",
        "learning_rate_multiplier": 0.5,
        "full_finetune": True,
    }
    assert re.search(
        r"Failed: ftjob-\w+: The job failed due to an invalid training file\. Invalid file format",
        result.output,
    )
    assert "Traceback" not in result.output


def test_cancel_then_pause_and_resume_answer_with_the_servers_message(cli_server: LiveServer) -> None:
    training_file = cli_server.client().files.create(
        file=("t.jsonl", "\n".join(json.dumps(e) for e in make_split(10, 0, seed=1)[0]).encode()),
        purpose="fine-tune",
    )
    url = cli_server.base_url
    created = run_jobs(url, "create", "--model=openft-tiny", f"--training-file={training_file.id}", "--json")
    assert created.exit_code == 0, created.output
    job_id = json.loads(created.stdout)["id"]

    cancelled = run_jobs(url, "cancel", job_id)
    assert cancelled.exit_code == 0 and f"{job_id} is now cancelled." in cancelled.output, cancelled.output
    followed = run_jobs(url, "follow", job_id)
    assert followed.exit_code == 1 and f"Cancelled: {job_id}" in followed.output

    paused = run_jobs(url, "pause", job_id)
    assert paused.exit_code == 1
    assert (
        f"Job {job_id} has status 'cancelled'; only a queued or running job can be paused." in paused.output
    )
    resumed = run_jobs(url, "resume", job_id)
    assert resumed.exit_code == 1 and "only a paused job can be resumed" in resumed.output
    again = run_jobs(url, "cancel", job_id, "--json")
    assert again.exit_code == 1 and "can no longer be cancelled" in again.output and again.stdout == ""


@pytest.mark.parametrize("command", ["get", "follow", "events", "checkpoints", "cancel"])
def test_an_unknown_job_exits_1_with_the_servers_message(cli_server: LiveServer, command: str) -> None:
    result = run_jobs(cli_server.base_url, command, "ftjob-nope")
    assert result.exit_code == 1
    assert "No such FineTuningJob object: ftjob-nope" in result.output
    assert "Traceback" not in result.output


def test_bad_arguments_and_an_unreachable_server(cli_server: LiveServer, tmp_path: Path) -> None:
    missing = run_jobs(
        cli_server.base_url, "create", "--model=openft-tiny", f"--training-file={tmp_path / 'x.jsonl'}"
    )
    assert missing.exit_code == 1 and "no such local file, and not a file id" in missing.output
    path = tmp_path / "train.jsonl"
    path.write_text("{}\n")
    typo = run_jobs(cli_server.base_url, "create", "--model=openft-tinyy", f"--training-file={path}")
    assert typo.exit_code == 1 and "The model `openft-tinyy` does not exist" in typo.output
    assert "Uploaded" not in typo.output  # checked before the upload
    unknown_file = run_jobs(cli_server.base_url, "create", "--model=openft-tiny", "--training-file=file-nope")
    assert unknown_file.exit_code == 1 and "invalid training_file: file-nope" in unknown_file.output
    epochs = run_jobs(
        cli_server.base_url, "create", "--model=openft-tiny", "--training-file=file-x", "--n-epochs=many"
    )
    assert epochs.exit_code == 2 and "auto" in epochs.output
    metadata = run_jobs(cli_server.base_url, "list", "--metadata", "team")
    assert metadata.exit_code == 2 and "KEY=VALUE" in metadata.output
    offline = run_jobs("http://127.0.0.1:9/v1", "list")
    assert (
        offline.exit_code == 1
        and "could not reach the openft server at http://127.0.0.1:9/v1" in offline.output
    )


def test_the_jobs_commands_import_neither_torch_nor_the_sdk_up_front() -> None:
    code = "import sys, openft.cli.jobs; print(sorted({'torch', 'openai', 'httpx'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
