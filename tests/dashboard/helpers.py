"""What the browser tests share: waiting for pages that redraw as data arrives, and finding elements."""

from __future__ import annotations

from collections.abc import Callable

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import LiveServer

WAIT_S = 120  # a bound on a stuck page, never a timing assertion
Screenshot = Callable[..., None]  # screenshot(name, scroll=True): conftest's fixture


def wait(browser: WebDriver) -> WebDriverWait:  # type: ignore[type-arg]
    # Pages redraw parts as data arrives: an element found a moment ago may be replaced; look again.
    return WebDriverWait(
        browser, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )


def open_page(browser: WebDriver, server: LiveServer, page: str) -> None:
    """Load the page afresh (going to the URL already shown would only keep the page as it is)."""
    browser.get("about:blank")
    browser.get(f"{server.root_url}/#/{page}")
    wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "main h1").text not in ("", "…"))


def element(browser: WebDriver, css: str) -> WebElement:
    return wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, css))


def plotted_points(browser: WebDriver) -> int:
    return int(browser.find_element(By.CSS_SELECTOR, "svg.chart").get_attribute("data-points") or 0)
