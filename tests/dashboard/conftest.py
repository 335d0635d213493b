"""Fixtures for the dashboard's browser tests: Debian's headless Chromium driven by selenium, kept off
every network but loopback, and a server with a worker and openft-tiny.

Screenshots of the pages go to docs/dashboard/*.png only when OPENFT_DASHBOARD_SCREENSHOTS=1, so a
normal run never rewrites tracked files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import LiveServer, ServerFactory
from tests.jobs import conftest as jobs_conftest
from tests.jobs.conftest import start_job_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "dashboard"
WINDOW = (1280, 900)

tiny_model_dir = jobs_conftest.tiny_model_dir


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs /usr/bin/chromium: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests and CI run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # No network but loopback: every other host name fails to resolve, so a CDN link would fail.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_window_size(*WINDOW)
    yield driver
    driver.quit()


@pytest.fixture
def page_errors(browser: WebDriver) -> Iterator[None]:
    """After the test: the pages raised no uncaught script error and broke no Content-Security-Policy
    rule (a stray external link or inline script would)."""
    browser.get_log("browser")  # drop what earlier tests left
    yield
    messages = [entry["message"] for entry in browser.get_log("browser")]
    problems = [m for m in messages if "Content Security Policy" in m or "Uncaught" in m]
    assert not problems, problems


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LiveServer]:
    """A server with its worker running and openft-tiny in its models dir, shared by the test modules
    (one server start; each test makes its own files and jobs)."""
    factory = ServerFactory(tmp_path_factory.mktemp("dashboard"))
    # A small end-of-job evaluation (base against fine-tuned answers on 4 validation examples): the job
    # page shows it; the scores themselves are tested in tests/jobs.
    yield start_job_server(factory, tiny_model_dir, job_eval_max_examples=4)
    factory.close()


@pytest.fixture(scope="session")
def screenshot(browser: WebDriver) -> Callable[..., None]:
    """`screenshot("jobs")` saves docs/dashboard/jobs.png when OPENFT_DASHBOARD_SCREENSHOTS=1, from the
    top of the page unless `scroll=False` (the test has scrolled to what it shows)."""
    enabled = os.environ.get("OPENFT_DASHBOARD_SCREENSHOTS") == "1"

    def save(name: str, scroll: bool = True) -> None:
        if enabled:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            browser.execute_script("document.activeElement?.blur()")
            if scroll:
                browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(str(SCREENSHOT_DIR / f"{name}.png"))

    return save
