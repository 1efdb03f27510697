"""The results page (issue 21 part 3) in a real headless browser: it loads with no console error, a click on a
column head sorts the table, every number carries its provenance, and a screenshot is not blank.

Needs Chromium and its driver from Debian (`apt-get install chromium chromium-driver`) and selenium (the test extra);
.ci/run installs them, elsewhere the browser test skips with a reason."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from benchmark.report.build import PAGE, ReportOptions, build_reports
from tests.test_report import crafted_cold, crafted_store, write_trial

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _page(tmp_path):
    store = crafted_store(tmp_path)
    for seed in range(3):
        write_trial(store, "dssm", seed, np.ones(200, bool), crafted_cold(), scores=True)
    store.write({"trial_id": "broken", "status": "failed", "seed": 0, "error": "RuntimeError: boom",
                 "dataset": {"name": "ml-100k"}, "protocol": {"name": "loo", "split_hash": "f" * 64},
                 "method": {"name": "heater", "budget": "paper", "variant": "", "version": "1"}}, None)
    written = build_reports(store, tmp_path / "reports", ReportOptions(formats=["html"], plots=True))
    return next(p for p in written if p.name == PAGE)


def test_the_page_is_self_contained_and_names_provenance_and_failures(tmp_path):
    text = _page(tmp_path).read_text()
    assert "<script>" in text and "<style>" in text and "data:image/png;base64," in text
    for remote in ('src="http', "href=\"http", "@import", "src='//"):
        assert remote not in text  # nothing is fetched at view time
    assert "split ffffffffffff; seeds 0, 1, 2; commit" in text and "data not recorded" in text
    assert "RuntimeError: boom" in text and "heater" in text
    assert "$\\dagger$" not in text and "†" in text


def test_the_page_in_a_headless_browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI: .ci/run installs them from Debian")
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    page = _page(tmp_path)
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1400"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        assert driver.title == "promo-bench results"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        table = driver.find_elements(By.CSS_SELECTOR, "table.sortable")[0]

        def column(k: int) -> list[float]:
            return [float(r.find_elements(By.TAG_NAME, "td")[k].get_attribute("data-v"))
                    for r in table.find_elements(By.CSS_SELECTOR, "tbody:first-of-type tr")]

        heads = table.find_elements(By.CSS_SELECTOR, "thead th")
        heads[2].click()
        assert column(2) == sorted(column(2), reverse=True) and len(column(2)) >= 4
        heads[2].click()
        assert column(2) == sorted(column(2))
        cell = table.find_elements(By.CSS_SELECTOR, "tbody tr td")[1]
        assert "split ffffffffffff" in cell.get_attribute("title")
        shot = tmp_path / "shot.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.05  # text, tables and figures, not a blank page
