"""The report page in a real browser: headless Chromium opens it from disk, every picture loads, the console
stays clean; a full-page screenshot is kept (and copied to $SMMCL_SCREENSHOT when that is set).

$SMMCL_REPORT_PAGE=path/to/index.html checks a page written before (e.g. `smmcl report runs/demo/base
--compare runs/demo/smmcl`) instead of one of the tiny test runs: that is how the README screenshot is made.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import smmcl

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No sandbox (containers run as root), no GPU, and nothing that reaches for the network on its own.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")
WIDTH = 1600


@pytest.fixture()
def browser(tmp_path):
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs them")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise look for one on the network.
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_report_page_renders_in_chromium(browser, request, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    given = os.environ.get("SMMCL_REPORT_PAGE")
    if given:
        index = Path(given)
    else:  # the tiny runs are trained only when no page is given
        runs = request.getfixturevalue("tiny_runs")
        index = smmcl.report(runs["base"], compare=[runs["smmcl"]], out=tmp_path / "report", num_images=3,
                             progress=False)
    browser.set_window_size(WIDTH, 1000)
    browser.get(index.resolve().as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")

    images = browser.execute_script(
        "return Array.from(document.images, i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert images, "the page shows no picture"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"pictures that did not load: {broken}"
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, f"browser console errors: {severe}"
    text = browser.execute_script("return document.body.innerText")
    assert "Scores" in text and "Confusion matrices" in text and "ground truth" in text

    wide = browser.execute_script("return document.documentElement.scrollWidth")
    assert wide <= WIDTH, f"the page is {wide} px wide: wider than a {WIDTH} px window"
    # The whole page in one picture: a viewport as tall as the document (the window's frame added).
    frame = browser.execute_script("return window.outerHeight - window.innerHeight")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, height + max(0, frame))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("SMMCL_SCREENSHOT"):
        target = Path(os.environ["SMMCL_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
