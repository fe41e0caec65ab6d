"""The HTML report in a real browser: Debian's headless Chromium through Selenium and
chromedriver loads it from a file:// URL without console errors, shows every table and figure,
and sorts a table when a heading is clicked.

Without Chromium the test is skipped on a developer's machine, but fails under CI (``CI`` set,
as ``.ci/run`` does), where ``.ci/run`` installs ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import os
import shutil

import pytest

from uqbench.analysis.report import build_report, write_report

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _driver():
    if not (CHROMIUM and DRIVER):
        message = (
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs them")
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))


def test_the_report_loads_in_chromium_with_every_table_and_figure(
    harness_runs, search_dir, tmp_path
):
    from selenium.webdriver.common.by import By

    report = build_report([harness_runs, search_dir], figures=True)
    (page,) = write_report(report, tmp_path, ["html"])
    driver = _driver()
    try:
        driver.get(page.as_uri())
        assert driver.title == "uqbench report"
        tables = driver.find_elements(By.CSS_SELECTOR, "table.results")
        assert len(tables) == len(report.tables) > 5
        figures = driver.find_elements(By.CSS_SELECTOR, "figure.fig img")
        assert len(figures) == len(report.figures) > 5
        # every embedded PNG decoded into an image of some size
        sizes = [driver.execute_script("return arguments[0].naturalWidth", img) for img in figures]
        assert min(sizes) > 100
        # sorting: click the accuracy heading of the test table twice (ascending, descending)
        test = next(t for t in tables if "test/accuracy" in t.text)
        headings = [th.text for th in test.find_elements(By.TAG_NAME, "th")]
        column = headings.index("test/accuracy")
        heading = test.find_elements(By.TAG_NAME, "th")[column]

        def values():
            cells = [
                row.find_elements(By.TAG_NAME, "td")[column]
                for row in test.find_elements(By.CSS_SELECTOR, "tbody tr")
            ]
            return [float(c.get_attribute("data-v")) for c in cells if c.get_attribute("data-v")]

        heading.click()
        assert values() == sorted(values())
        heading.click()
        assert values() == sorted(values(), reverse=True)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
    finally:
        driver.quit()
