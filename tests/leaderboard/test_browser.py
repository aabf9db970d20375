"""A real browser: headless Chromium loads the app served by `streamlit run` against the seeded API."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.seed import seed_scored_model

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM):  # a missing browser is a broken setup, not a reason to test less
    pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)",
                pytrace=False)


@pytest.fixture
def board_url(api_url):  # noqa: F811
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "leaderboard/app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "EVALBOARD_API_URL": api_url},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


TASKS = ["world_facts", "reading_comprehension", "cipher_translation", "report_summary", "arithmetic_mc",
         "weekday_reasoning", "word_problems"]
# `EVALBOARD_SCREENSHOTS=docs pytest tests/leaderboard/test_browser.py` refreshes the README's screenshots.
SCREENSHOTS = os.environ.get("EVALBOARD_SCREENSHOTS")


def page_text(page) -> str:
    """What a visitor can read: the page's text and every grid's cells (the grid draws on a canvas; its
    accessible table carries the cell text)."""
    grids = page.locator('[data-testid="stDataFrame"] table')
    return page.locator("body").inner_text() + "\n".join(
        grids.nth(i).text_content(timeout=10_000) or "" for i in range(grids.count()))


def assert_clean(page, where: str) -> str:
    text = page_text(page)
    assert "Traceback" not in text and "Error" not in text.replace("Recent failures", ""), (where, text[-2000:])
    assert not re.search(r"\bNone\b", text), (where, [line for line in text.splitlines() if "None" in line])
    return text


GRIDS_FILLED = """grids => [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(
    grid => (grid.querySelector('table')?.textContent || '').length > 0).length >= grids"""


def settle(page, text: str, grids: int) -> None:
    """Wait for `text` and for `grids` tables with their cells (attached after the grid itself)."""
    page.get_by_text(text).first.wait_for(timeout=30_000)
    page.wait_for_function(GRIDS_FILLED, arg=grids, timeout=20_000)
    page.wait_for_timeout(800)  # the charts paint after they are attached


def test_the_visitor_pages_render_in_chromium(board_url, tmp_path):
    """Issue 17 and 19 in a real browser, one session: the board (track selector, chart, unranked partial
    section), a Model page, Compare's paired verdict and a Queue that refreshes itself; no `None`, no
    traceback on any of them."""
    from playwright.sync_api import sync_playwright

    from core.models import Status
    from tests.seed import seed_submission
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    strong = seed_scored_model("strong-model", {t: 0.9 for t in TASKS}, samples=60, params=7_200_000_000)
    weak = seed_scored_model("weak-model", {t: 0.3 for t in TASKS}, samples=60, params=141_000)
    for name, score in (("mid-model", 0.6), ("fair-model", 0.5)):
        seed_scored_model(name, {t: score for t in TASKS}, params=350_000_000, owner="carol")
    seed_scored_model("partial-model", {"world_facts": 0.5}, params=None)
    seed_submission("busy-model", {"world_facts": Status.finished, "arithmetic_mc": Status.running})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{board_url}/model?model_id={strong}")
            settle(page, "Per-task scores", grids=2)
            text = assert_clean(page, "model")
            assert "7.2B parameters" in text and "95% interval" in text
            # A link opened first on a fresh server gets the app's navigation, not a bare page.
            assert page.get_by_test_id("stSidebarNav").get_by_text("Leaderboard", exact=True).count() == 1
            page.screenshot(path=str(shots / "model.png"), full_page=True)

            page.goto(board_url)
            settle(page, "Not ranked: partial coverage", grids=2)
            text = assert_clean(page, "board")
            assert "Track" in text and "language-core@" in text
            assert "strong-model" in text and "weak-model" in text and f"model?model_id={strong}#" in text
            assert re.search(r"\d+\.\d ± \d+\.\d", text)  # overall with its interval
            page.screenshot(path=str(shots / "leaderboard.png"), full_page=True)

            page.goto(f"{board_url}/compare?ids={strong},{weak}")
            settle(page, "Paired verdicts", grids=3)
            text = assert_clean(page, "compare")
            assert "strong-model beats weak-model on overall" in text, text[-2000:]
            page.screenshot(path=str(shots / "compare.png"), full_page=True)

            page.goto(f"{board_url}/queue")
            settle(page, "busy-model", grids=1)
            assert "finished" in assert_clean(page, "queue")
            seed_submission("late-model", {"world_facts": Status.queued})
            page.get_by_text("late-model").first.wait_for(timeout=15_000)  # no reload: the page refreshed itself
            page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
        finally:
            browser.close()
