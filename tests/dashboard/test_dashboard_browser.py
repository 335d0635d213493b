"""The dashboard in a real headless Chromium against a live server: upload, check and delete files, start
a job and watch its chart grow, pause, resume and cancel it, a finished job's evaluation, delete a model,
stream a chat answer, compare two models, and the key page when the server requires keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from openft.train.synthetic import make_split
from tests.conftest import LiveServer, ServerFactory
from tests.dashboard.helpers import Screenshot, element, open_page, plotted_points, wait
from tests.jobs.conftest import synthetic_files, upload_examples, wait_for_job

pytestmark = pytest.mark.usefixtures("page_errors")


def long_job(client: OpenAI, metadata: dict[str, str] | None = None) -> str:
    """A job that trains for minutes unless stopped (500 steps of openft-tiny)."""
    training_file, _ = synthetic_files(client, n_train=20, n_valid=4)
    return client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        hyperparameters={"n_epochs": 25, "batch_size": 1},
        metadata=metadata,
    ).id


@pytest.fixture(scope="module")
def finished_job(dashboard_server: LiveServer) -> str:
    """A short job that succeeded: its fine-tuned model and checkpoints to look at and chat with."""
    client = dashboard_server.client()
    training_file, validation_file = synthetic_files(client, n_train=10, n_valid=4)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        validation_file=validation_file,
        hyperparameters={"n_epochs": 2, "batch_size": 1},
        seed=0,
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    return job.id


def test_upload_a_file_and_see_its_check_report(
    browser: WebDriver, dashboard_server: LiveServer, tmp_path: Path, screenshot: Screenshot
) -> None:
    broken = tmp_path / "broken.jsonl"
    train, _ = make_split(10, 0, seed=0)  # ten: the fewest examples a training file may have
    broken.write_text("\n".join(json.dumps(e) for e in train[:3]) + '\n{"messages": [\n')
    open_page(browser, dashboard_server, "files")
    browser.find_element(By.ID, "upload-file").send_keys(str(broken))
    browser.find_element(By.ID, "upload-button").click()
    report = element(browser, "#check-report .check-report")
    assert report.get_attribute("data-ok") == "false"
    assert "line 4" in report.text and "Not trainable" in report.text

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(e) for e in train) + "\n")
    browser.find_element(By.ID, "upload-file").send_keys(str(good))
    browser.find_element(By.ID, "upload-button").click()
    wait(browser).until(lambda b: "good.jsonl" in b.find_element(By.ID, "check-report").text)
    report = element(browser, "#check-report .check-report")
    assert report.get_attribute("data-ok") == "true", report.text
    assert "10 valid examples" in report.text
    uploaded_id = browser.find_element(By.ID, "uploaded-id").text
    assert [f.filename for f in dashboard_server.client().files.list() if f.id == uploaded_id] == [
        "good.jsonl"
    ]
    assert "broken.jsonl" in browser.find_element(By.ID, "files-list").text
    screenshot("files")

    # Delete asks for a second click, then the file is gone from the server and the list.
    (broken_id,) = [f.id for f in dashboard_server.client().files.list() if f.filename == "broken.jsonl"]
    row = f"//tr[.//span[text()='{broken_id}']]"
    browser.find_element(By.XPATH, f"{row}//button[text()='Delete']").click()
    browser.find_element(By.XPATH, f"{row}//button[text()='Really delete?']").click()
    wait(browser).until(lambda b: "broken.jsonl" not in b.find_element(By.ID, "files-list").text)
    assert broken_id not in [f.id for f in dashboard_server.client().files.list()]


def test_start_a_job_from_the_new_job_page_and_watch_the_chart_grow(
    browser: WebDriver, dashboard_server: LiveServer, screenshot: Screenshot
) -> None:
    client = dashboard_server.client()
    train, _ = make_split(20, 0, seed=1)
    training_file = upload_examples(client, train, "chart-train.jsonl")
    open_page(browser, dashboard_server, "new-job")
    Select(browser.find_element(By.ID, "training-file")).select_by_value(training_file)
    Select(browser.find_element(By.ID, "base-model")).select_by_value("openft-tiny")
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "#new-job-check .check-report"))
    browser.find_element(By.ID, "hp-n_epochs").send_keys("25")
    browser.find_element(By.ID, "hp-batch_size").send_keys("1")
    screenshot("new-job")
    browser.find_element(By.ID, "create-job").click()

    wait(browser).until(lambda b: "#/jobs/ftjob-" in b.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.training_file == training_file and job.model == "openft-tiny"
    assert job.method.supervised.hyperparameters.n_epochs == 25  # type: ignore[union-attr]
    wait(browser).until(lambda b: plotted_points(b) > 0)
    first = plotted_points(browser)
    wait(browser).until(lambda b: plotted_points(b) > first)  # new events drew new points
    assert "Step " in browser.find_element(By.ID, "event-log").text
    screenshot("job-running")

    # The page shows the job running (and its Pause button) as soon as its first step arrives.
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, ".page-head .badge").text == "running")
    browser.find_element(By.CSS_SELECTOR, "button[data-action='pause']").click()
    badge = ".page-head .badge"
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, badge).text == "paused")
    assert client.fine_tuning.jobs.retrieve(job_id).status == "paused"
    wait(browser).until(lambda b: "job paused" in b.find_element(By.ID, "event-log").text)
    browser.find_element(By.CSS_SELECTOR, "button[data-action='resume']").click()
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, badge).text in ("queued", "running"))
    assert client.fine_tuning.jobs.retrieve(job_id).status in ("queued", "running")

    browser.find_element(By.CSS_SELECTOR, "button[data-action='cancel']").click()
    wait(browser).until(lambda b: "cancelled" in b.find_element(By.CSS_SELECTOR, ".page-head .badge").text)
    assert client.fine_tuning.jobs.retrieve(job_id).status == "cancelled"


def test_cancel_a_job_from_the_jobs_list(
    browser: WebDriver, dashboard_server: LiveServer, screenshot: Screenshot
) -> None:
    client = dashboard_server.client()
    job_id = long_job(client, metadata={"purpose": "cancel-test"})
    wait_for_job(client, job_id, statuses=("running",))
    open_page(browser, dashboard_server, "jobs")
    cancel = element(browser, f"button[aria-label='Cancel {job_id}']")
    screenshot("jobs")
    cancel.click()
    wait_for_job(client, job_id, statuses=("cancelled",), timeout_s=30)
    row_css = f"//a[@href='#/jobs/{job_id}']/ancestor::tr"
    wait(browser).until(lambda b: "cancelled" in b.find_element(By.XPATH, row_css).text)
    assert not browser.find_element(By.XPATH, row_css).find_elements(By.CSS_SELECTOR, "button")

    Select(browser.find_element(By.ID, "status-filter")).select_by_value("running")
    assert job_id not in browser.find_element(By.ID, "jobs-list").text

    # The metadata filter: the pair the job was created with finds it, another pair does not.
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("")
    metadata = browser.find_element(By.ID, "metadata-filter")
    metadata.send_keys("purpose=cancel-test")
    # (The list redraws every few seconds while other tests' jobs run: look it up afresh each time.)
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#jobs-list tbody tr")) == 1)
    assert job_id in browser.find_element(By.ID, "jobs-list").text
    metadata.send_keys("-other")
    wait(browser).until(lambda b: "No job matches the filters." in b.find_element(By.ID, "jobs-list").text)


def test_a_finished_job_shows_its_charts_checkpoints_and_result_file(
    browser: WebDriver, dashboard_server: LiveServer, finished_job: str, screenshot: Screenshot
) -> None:
    client = dashboard_server.client()
    job = client.fine_tuning.jobs.retrieve(finished_job)
    n_metrics = sum(
        1 for e in client.fine_tuning.jobs.list_events(finished_job, limit=100) if e.type == "metrics"
    )
    open_page(browser, dashboard_server, f"jobs/{finished_job}")
    loss_css = "svg.chart path[data-key='train_loss']"
    wait(browser).until(
        lambda b: b.find_element(By.CSS_SELECTOR, loss_css).get_attribute("data-points") == str(n_metrics)
    )
    assert browser.find_element(By.CSS_SELECTOR, "svg.chart path[data-key='full_valid_loss']")
    checkpoints = element(browser, "#checkpoints table")
    assert job.fine_tuned_model is not None and job.fine_tuned_model in checkpoints.text
    assert "Download results CSV" in browser.find_element(By.TAG_NAME, "main").text
    hyperparameters = browser.find_element(By.ID, "hyperparameters").text
    assert "n_epochs 2" in hyperparameters and "batch_size 1" in hyperparameters

    # The end-of-job evaluation: its event at the top, the scores and both models' answers below.
    # It runs after the job succeeded: the page waits for its event, then shows it.
    banner = element(browser, "#evaluation-event .evaluation-event")
    evaluation: Any = client.get(f"/fine_tuning/jobs/{finished_job}/evaluation", cast_to=object)
    assert f"Evaluation on {evaluation['n_examples']} validation examples" in banner.text
    # The section is drawn again when the evaluation's event arrives: read it once it shows the result.
    wait(browser).until(lambda b: evaluation["headline"] in b.find_element(By.ID, "evaluation").text)
    section = element(browser, "#evaluation")
    rows = section.find_elements(By.CSS_SELECTOR, "#evaluation-examples tbody tr")
    assert len(rows) == evaluation["n_examples"] == 4
    first = evaluation["rows"][0]
    assert first["case"]["reference"] in rows[0].text
    assert first["candidate"]["text"].strip() in rows[0].text
    regressed = section.find_element(By.CSS_SELECTOR, "button[data-verdict='regressed']")
    regressed.click()
    wait(browser).until(lambda _: regressed.get_attribute("aria-pressed") == "true")
    shown = section.find_elements(By.CSS_SELECTOR, "#evaluation-examples tbody tr")
    assert len(shown) == evaluation["n_regressed"]
    screenshot("job")
    browser.execute_script("document.getElementById('evaluation').scrollIntoView()")
    screenshot("job-evaluation", scroll=False)

    open_page(browser, dashboard_server, "models")
    wait(browser).until(lambda b: job.fine_tuned_model in b.find_element(By.TAG_NAME, "main").text)
    screenshot("models")


def test_playground_streams_an_answer(
    browser: WebDriver, dashboard_server: LiveServer, finished_job: str
) -> None:
    # The fine-tuned model, greedy: untrained openft-tiny may well end its answer before any text.
    tuned = dashboard_server.client().fine_tuning.jobs.retrieve(finished_job).fine_tuned_model
    open_page(browser, dashboard_server, f"playground?model={tuned}")
    browser.find_element(By.ID, "temperature").clear()
    browser.find_element(By.ID, "temperature").send_keys("0")
    browser.find_element(By.ID, "max-tokens").clear()
    browser.find_element(By.ID, "max-tokens").send_keys("12")
    browser.find_element(By.ID, "prompt").send_keys("Question 1?")
    browser.find_element(By.ID, "send").click()
    answer = element(browser, ".answer")
    wait(browser).until(lambda _: answer.get_attribute("data-state") != "streaming")
    assert answer.get_attribute("data-state") == "done", answer.text
    assert int(answer.get_attribute("data-chunks") or 0) >= 2  # the role chunk, then text as it came
    assert answer.find_element(By.CSS_SELECTOR, ".text").text.strip()


def test_compare_two_models_on_the_same_conversation(
    browser: WebDriver, dashboard_server: LiveServer, finished_job: str, screenshot: Screenshot
) -> None:
    tuned = dashboard_server.client().fine_tuning.jobs.retrieve(finished_job).fine_tuned_model
    assert tuned is not None
    open_page(browser, dashboard_server, "playground?model=openft-tiny")
    browser.find_element(By.ID, "add-model").click()
    Select(element(browser, "#model-2")).select_by_value(tuned)
    browser.find_element(By.ID, "temperature").clear()
    browser.find_element(By.ID, "temperature").send_keys("0")
    browser.find_element(By.ID, "max-tokens").clear()
    browser.find_element(By.ID, "max-tokens").send_keys("12")
    browser.find_element(By.ID, "prompt").send_keys("Question 1?")
    browser.find_element(By.ID, "send").click()
    wait(browser).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, ".answer:not([data-state='streaming'])")) == 2
    )
    answers = browser.find_elements(By.CSS_SELECTOR, ".answer")
    assert [a.get_attribute("data-state") for a in answers] == ["done", "done"], [a.text for a in answers]
    columns = browser.find_elements(By.CSS_SELECTOR, "#columns .column")
    assert len(columns) == 2
    for column in columns:
        assert "Question 1?" in column.find_element(By.CSS_SELECTOR, ".turn.user").text
    heads = [c.find_element(By.CSS_SELECTOR, ".answer .who").text for c in columns]
    assert heads == ["openft-tiny", tuned]
    screenshot("playground")


def test_delete_a_checkpoint_model(
    browser: WebDriver, dashboard_server: LiveServer, finished_job: str
) -> None:
    client = dashboard_server.client()
    job = client.fine_tuning.jobs.retrieve(finished_job)
    # The first epoch's checkpoint model (the last one is the fine-tuned model the other tests use).
    checkpoint = min(client.fine_tuning.jobs.checkpoints.list(finished_job), key=lambda c: c.step_number)
    model_id = checkpoint.fine_tuned_model_checkpoint
    assert model_id != job.fine_tuned_model
    open_page(browser, dashboard_server, "models")
    row = f"//tr[.//span[text()='{model_id}']]"
    element(browser, "main table")
    browser.find_element(By.XPATH, f"{row}//button[text()='Delete']").click()
    browser.find_element(By.XPATH, f"{row}//button[text()='Really delete?']").click()
    wait(browser).until(lambda b: model_id not in b.find_element(By.TAG_NAME, "main").text)
    assert model_id not in [m.id for m in client.models.list()]
    assert job.fine_tuned_model in [m.id for m in client.models.list()]


def test_the_key_page_appears_when_keys_are_required(
    browser: WebDriver, server_factory: ServerFactory, screenshot: Screenshot
) -> None:
    server = server_factory()
    key = server.create_key("team")
    browser.get(f"{server.root_url}/#/jobs")
    key_input = element(browser, "#api-key")
    assert "API key needed" in browser.find_element(By.TAG_NAME, "h1").text
    screenshot("key")
    key_input.send_keys("sk-openft-wrong")
    browser.find_element(By.CSS_SELECTOR, ".key-form button").click()
    wait(browser).until(lambda b: "Incorrect API key" in b.find_element(By.CSS_SELECTOR, ".key-form").text)

    key_input.clear()
    key_input.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, ".key-form button").click()
    wait(browser).until(lambda b: b.find_element(By.TAG_NAME, "h1").text == "Fine-tuning jobs")
    assert browser.execute_script("return sessionStorage.getItem('openft.apiKey')") == key
    assert browser.execute_script("return localStorage.length") == 0
