"""The dashboard's other methods and pages in headless Chromium against a live server: a reinforcement job
from the New job page (its grader validated inline, the API's error shown), DPO's reward charts, a large
file uploaded in parts through the Uploads API, the Evals page, and the layout at phone width."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from openft.train.synthetic import make_split
from tests.conftest import LiveServer
from tests.dashboard.conftest import WINDOW
from tests.dashboard.helpers import WAIT_S, Screenshot, element, open_page, wait
from tests.jobs.conftest import upload_examples, wait_for_job

pytestmark = pytest.mark.usefixtures("page_errors")

# Learnable by openft-tiny (tests/jobs/test_reinforcement_jobs.py): the reward counts one letter.
GRADER = {
    "type": "python",
    "name": "letters",
    "source": "def grade(sample, item):\n"
    "    return min(1.0, sample['output_text'].count(item['letter']) / 8)\n",
}


def series_points(browser: WebDriver, key: str) -> int:
    paths = browser.find_elements(By.CSS_SELECTOR, f"svg.chart path[data-key='{key}']")
    return int(paths[0].get_attribute("data-points") or 0) if paths else 0


def set_field(browser: WebDriver, element_id: str, text: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def test_a_reinforcement_job_from_the_new_job_page(
    browser: WebDriver, dashboard_server: LiveServer, screenshot: Screenshot
) -> None:
    client = dashboard_server.client()
    prompts = [
        {"messages": [{"role": "user", "content": f"Say something, number {i}."}], "letter": "a"}
        for i in range(4)
    ]
    training_file = upload_examples(client, prompts, "prompts.jsonl")
    validation_file = upload_examples(client, prompts[:2], "held-out.jsonl")
    open_page(browser, dashboard_server, "new-job")
    Select(browser.find_element(By.ID, "training-file")).select_by_value(training_file)
    Select(browser.find_element(By.ID, "validation-file")).select_by_value(validation_file)
    Select(browser.find_element(By.ID, "base-model")).select_by_value("openft-tiny")
    Select(browser.find_element(By.ID, "method")).select_by_value("reinforcement")
    grader_field = browser.find_element(By.ID, "grader-field")
    assert grader_field.is_displayed() and browser.find_element(By.ID, "hp-compute_multiplier").is_displayed()
    assert not browser.find_element(By.ID, "hp-beta").is_displayed()
    # Checked as reinforcement prompts (lines without answers), the file passes.
    wait(browser).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, '#new-job-check .check-report[data-ok="true"]')
    )
    assert "reinforcement prompts" in element(browser, "#new-job-check").text
    assert browser.find_element(By.ID, "create-job").is_enabled()

    validate = browser.find_element(By.ID, "validate-grader")
    set_field(browser, "grader", '{"type": "string_check",')
    validate.click()
    assert "not valid JSON" in element(browser, "#grader-status .error").text
    bad = {
        "type": "string_check",
        "name": "x",
        "input": "{{sample.output_text}}",
        "reference": "a",
        "operation": "sort",
    }
    set_field(browser, "grader", json.dumps(bad))
    validate.click()
    wait(browser).until(lambda b: "operation" in b.find_element(By.ID, "grader-status").text)
    assert browser.find_element(By.CSS_SELECTOR, "#grader-status .error").is_displayed()
    set_field(browser, "grader", json.dumps(GRADER, indent=1))
    validate.click()
    wait(browser).until(lambda b: "The grader is valid." in b.find_element(By.ID, "grader-status").text)

    # The API's own error message comes back on the page.
    set_field(browser, "hp-n_epochs", "0")
    browser.find_element(By.ID, "create-job").click()
    problem = element(browser, "form.job-form .error")
    assert "n_epochs" in problem.text, problem.text
    assert browser.find_element(By.ID, "create-job").is_enabled()

    set_field(browser, "hp-n_epochs", "1")
    set_field(browser, "hp-batch_size", "2")
    set_field(browser, "hp-learning_rate_multiplier", "30")
    set_field(browser, "hp-compute_multiplier", "1")
    Select(browser.find_element(By.ID, "hp-reasoning_effort")).select_by_value("low")
    screenshot("new-job-reinforcement")
    browser.find_element(By.ID, "create-job").click()
    wait(browser).until(lambda b: "#/jobs/ftjob-" in b.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.method is not None and job.method.type == "reinforcement"
    assert job.method.reinforcement is not None and job.method.reinforcement.grader.name == "letters"  # type: ignore[union-attr]
    done = wait_for_job(client, job_id)
    assert done.status == "succeeded", done.error
    # Two steps: the sampled reward at each, the greedy valid reward at the end.
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, ".page-head .badge").text == "succeeded")
    wait(browser).until(lambda b: series_points(b, "train_reward_mean") == 2)
    assert series_points(browser, "valid_reward_mean") == 1
    assert "train reward" in browser.find_element(By.CSS_SELECTOR, "section.charts").text
    # The end-of-job evaluation scores both models' answers with the job's grader; each row shows the
    # prompt line's fields the grader reads instead of a reference answer.
    wait(browser).until(lambda b: "Item (what the grader reads)" in b.find_element(By.ID, "evaluation").text)
    assert '{"letter":"a"}' in element(browser, "#evaluation-examples").text
    assert "reward" in element(browser, "#evaluation").text


def test_dpo_jobs_chart_reward_accuracy_and_margin(browser: WebDriver, dashboard_server: LiveServer) -> None:
    client = dashboard_server.client()
    pairs = [
        {
            "input": {"messages": [{"role": "user", "content": f"Tell me about item {i}."}]},
            "preferred_output": [{"role": "assistant", "content": "Gladly, here it is."}],
            "non_preferred_output": [{"role": "assistant", "content": "No. Go away."}],
        }
        for i in range(10)
    ]
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, pairs, "prefs.jsonl"),
        method={"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1, "batch_size": 5}}},
    )
    assert wait_for_job(client, job.id).status == "succeeded"
    open_page(browser, dashboard_server, f"jobs/{job.id}")
    wait(browser).until(lambda b: series_points(b, "train_reward_margin") == 2)
    assert series_points(browser, "train_reward_accuracy") == 2
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".chart-box figcaption")]
    assert captions == ["Loss", "Reward accuracy", "Reward margin", "Supervised loss (preferred outputs)"]
    assert "Full valid reward margin" in element(browser, "#checkpoints table").text


def test_a_large_file_is_uploaded_in_parts(
    browser: WebDriver, dashboard_server: LiveServer, tmp_path: Path
) -> None:
    train, _ = make_split(50, 0, seed=2)
    lines, size, i = [], 0, 0
    while size <= 9 * 1024 * 1024:  # above the dashboard's 8 MiB part size: two parts
        line = json.dumps(train[i % len(train)])
        lines.append(line)
        size += len(line) + 1
        i += 1
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n")
    open_page(browser, dashboard_server, "files")
    browser.find_element(By.ID, "upload-file").send_keys(str(big))
    browser.find_element(By.ID, "upload-button").click()
    uploaded_id = element(browser, "#uploaded-id").text
    stored = dashboard_server.client().files.retrieve(uploaded_id)
    assert (stored.filename, stored.bytes, stored.purpose) == ("big.jsonl", big.stat().st_size, "fine-tune")
    requests: list[str] = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
    )
    uploads = [r for r in requests if r.startswith("/v1/uploads")]
    assert [r.rsplit("/", 1)[1] for r in uploads] == ["uploads", "parts", "parts", "complete"], uploads
    # One file made, by /complete (not a second one by a multipart POST /v1/files).
    assert [f.filename for f in dashboard_server.client().files.list()].count("big.jsonl") == 1
    wait(browser).until(lambda b: "big.jsonl" in b.find_element(By.ID, "check-report").text)
    assert element(browser, "#check-report .check-report").get_attribute("data-ok") == "true"


def test_the_evals_page_shows_runs_and_scores(
    browser: WebDriver, dashboard_server: LiveServer, screenshot: Screenshot
) -> None:
    client = dashboard_server.client()
    evaluation = client.evals.create(
        name="capitals",
        data_source_config={
            "type": "custom",
            "item_schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
            "include_sample_schema": True,
        },
        testing_criteria=[
            {
                "type": "string_check",
                "name": "exact answer",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "operation": "eq",
            }
        ],
    )
    content: list[Any] = [
        {"item": {"answer": "Paris"}, "sample": {"output_text": "Paris"}},
        {"item": {"answer": "Paris"}, "sample": {"output_text": "Lyon"}},
    ]
    run = client.evals.runs.create(
        evaluation.id,
        name="saved answers",
        data_source={"type": "jsonl", "source": {"type": "file_content", "content": content}},
    )
    open_page(browser, dashboard_server, "evals")
    # The page shows a run as it is when loaded: load it again until the run has finished.
    deadline = time.monotonic() + WAIT_S  # a bound on a stuck run, not a timing assertion
    while client.evals.runs.retrieve(run.id, eval_id=evaluation.id).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, "the eval run did not finish"
        time.sleep(0.2)
    open_page(browser, dashboard_server, "evals")
    runs = element(browser, "table[aria-label='Runs of capitals']")
    assert "completed" in runs.text
    row = runs.find_element(By.XPATH, ".//tbody/tr[1]").text
    assert "saved answers" in row and "exact answer: 50% (1/2)" in row

    # Each item with each run's verdicts, side by side (this run grades the answers its file holds).
    browser.find_element(By.CSS_SELECTOR, f"button[data-eval='{evaluation.id}']").click()
    answers = element(browser, "table[aria-label='Answers of capitals']")
    rows = [r.text for r in answers.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(rows) == 2 and "saved answers" in answers.text
    assert "✓ exact answer (1.00)" in rows[0] and "✗ exact answer (0.00)" in rows[1]
    screenshot("evals")


def test_pages_fit_a_phone_screen(browser: WebDriver, dashboard_server: LiveServer) -> None:
    browser.set_window_size(400, 800)
    try:
        for page in ("jobs", "new-job", "files", "models", "playground", "evals"):
            open_page(browser, dashboard_server, page)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"#/{page} is {overflow} px wider than a 400 px screen"
    finally:
        browser.set_window_size(*WINDOW)
