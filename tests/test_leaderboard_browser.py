"""The leaderboard page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) through
Selenium loads the page from the file system, sorts, filters, follows a row's record link and its suite entry, and
shows the main table without sideways scrolling at 1400 px, with the method column fixed on a phone.

Without Chromium, its driver or Selenium the test is skipped, except in CI (``CI`` set), where ``.ci/run``
installs them and a missing browser is a failure: a page that no browser ever ran is not tested.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdbench.store import RunStore, published_records
from kdbench.tables.leaderboard_files import write_leaderboard
from tests.test_leaderboard import ACC, write_published

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver


def _missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (DRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(Path(path).name)):
            return f"{path} is missing (apt-get install {package})"
    return ""


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: CI installs it (.ci/run), and this test must run there")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium") or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--hide-scrollbars", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER if Path(DRIVER).is_file() else shutil.which("chromedriver")),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


def visible_rows(driver, table) -> list[tuple[str, str]]:
    """(method, pair) of the table's shown rows, top to bottom."""
    from selenium.webdriver.common.by import By

    cells = driver.execute_script(
        "return Array.from(arguments[0].tBodies[0].rows).filter(r => !r.hidden)"
        ".map(r => [r.cells[0].textContent, r.cells[2].textContent]);", table)
    assert all(r.is_displayed() for r in table.find_elements(By.CSS_SELECTOR, "tbody tr:not([hidden])"))
    return [(method, pair) for method, pair in cells]


def pair_name(teacher: str | None, student: str) -> str:
    return f"{teacher} → {student}" if teacher else f"{student} (from scratch)"


def test_the_page_sorts_filters_links_and_fits_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    store = RunStore(tmp_path / "results")
    write_published(store)
    write_leaderboard(store, published_records(store), release="v1", built_on="2026-12-04")
    page = store.root / "leaderboard" / "index.html"
    driver = browser
    driver.set_window_size(1400, 1000)
    driver.get(page.as_uri())
    assert "js" in driver.execute_script("return document.documentElement.className")  # the script ran (CSP)
    main = driver.find_element(By.CSS_SELECTOR, "table.main")
    means = {(label, pair_name(t, s)): float(np.mean(accs)) for (label, t, s), accs in ACC.items()}

    # sort: the top-1 header, ascending by mean, then descending
    header = main.find_element(By.XPATH, ".//th[normalize-space(.)='top-1']//button")
    header.click()
    assert visible_rows(driver, main) == sorted(means, key=means.__getitem__)
    header.click()
    assert visible_rows(driver, main) == sorted(means, key=means.__getitem__, reverse=True)

    # filter: one pair is the per-pair view (its rows, its student from scratch, its figure; no summary)
    bar = driver.find_element(By.CSS_SELECTOR, "div.filters")
    assert bar.is_displayed()
    Select(bar.find_element(By.CSS_SELECTOR, "select[data-filter=pair]")).select_by_visible_text(
        "resnet32 → resnet14")
    assert sorted(visible_rows(driver, main)) == sorted(key for key in means if "resnet14" in key[1])
    summary = driver.find_element(By.XPATH, "//table[not(contains(@class, 'main'))]")
    assert not summary.is_displayed()
    shown = [f.get_attribute("id") for f in driver.find_elements(By.CSS_SELECTOR, "figure") if f.is_displayed()]
    assert len(shown) == 1 and "resnet32 → resnet14" in driver.find_element(By.ID, shown[0]).text
    assert bar.find_element(By.TAG_NAME, "output").text == f"3 of {len(ACC) + 3} rows"
    # + the method filter and a text search
    Select(bar.find_element(By.CSS_SELECTOR, "select[data-filter=pair]")).select_by_index(0)
    Select(bar.find_element(By.CSS_SELECTOR, "select[data-filter=lrds]")).select_by_visible_text("+DS")
    assert sorted(visible_rows(driver, main)) == sorted(key for key in means if key[0] == "kd+DS")
    bar.find_element(By.CSS_SELECTOR, "button[data-filter-reset]").click()
    bar.find_element(By.CSS_SELECTOR, "input[type=search]").send_keys("MSE")
    assert visible_rows(driver, main) == [("mse_kd", "resnet20 → resnet8")]
    bar.find_element(By.CSS_SELECTOR, "button[data-filter-reset]").click()
    assert len(visible_rows(driver, main)) == len(ACC)

    # the suite entry: a row's YAML link unfolds its block
    row = main.find_element(By.XPATH, ".//tbody/tr[td[1]='mse_kd']")
    row.find_element(By.LINK_TEXT, "YAML").click()
    entry = driver.find_element(By.ID, driver.execute_script("return location.hash.slice(1)"))
    assert entry.is_displayed() and "name: mse_kd" in entry.text

    # at 1400 px the main table shows whole, without scrolling sideways; a screenshot to look at
    driver.execute_script("window.scrollTo(0, 0)")
    sizes = driver.execute_script(
        "const w = document.querySelector('table.main').parentElement;"
        "return [document.documentElement.scrollWidth, window.innerWidth, w.scrollWidth, w.clientWidth];")
    assert sizes[1] == 1400 and sizes[0] <= sizes[1] and sizes[2] <= sizes[3], sizes
    assert driver.save_screenshot(str(tmp_path / "leaderboard_1400.png"))

    # on a phone the table scrolls inside its frame and the method column stays in place
    driver.set_window_size(390, 800)
    moved = driver.execute_script(
        "const t = document.querySelector('table.main'), w = t.parentElement; w.scrollLeft = 300;"
        "const first = t.tBodies[0].rows[0].cells[0].getBoundingClientRect().left,"
        "      third = t.tBodies[0].rows[0].cells[2].getBoundingClientRect().left;"
        "return [w.scrollWidth > w.clientWidth, w.scrollLeft, first - w.getBoundingClientRect().left, third];")
    assert moved[0] and moved[1] > 0 and abs(moved[2]) <= 2, moved
    assert driver.save_screenshot(str(tmp_path / "leaderboard_390.png"))
    driver.set_window_size(1400, 1000)

    # follow a row's record link: the record file beside the page loads
    link = row.find_element(By.LINK_TEXT, "1")
    href = link.get_attribute("href")
    link.click()
    assert driver.current_url == href and href.endswith("/record.json")
    record = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    assert record["label"] == "mse_kd" and record["seed"] == 1 and href.split("/")[-2] == record["key"]
    driver.back()

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors  # a refused inline script or style (CSP) would show here
