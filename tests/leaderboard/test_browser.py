"""A real browser: headless Chromium loads the app served by `streamlit run` against the seeded API."""
import os
import subprocess
import sys
import time

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


def test_the_board_renders_in_chromium(board_url, tmp_path):
    from playwright.sync_api import sync_playwright
    seed_scored_model("strong-model", {"world_facts": 0.85, "arithmetic_mc": 0.70})
    seed_scored_model("weak-model", {"world_facts": 0.30, "arithmetic_mc": 0.25})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(board_url)
            table = page.locator('[data-testid="stDataFrame"]')
            table.wait_for(state="visible", timeout=30_000)
            page.wait_for_timeout(1000)  # the grid paints after it is attached
            screenshot = tmp_path / "leaderboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            # The grid draws on a canvas; its accessible table carries the cell text.
            text = table.locator("table").first.text_content(timeout=10_000) or ""
            assert "strong-model" in text and "weak-model" in text
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()


TASKS = ["world_facts", "reading_comprehension", "cipher_translation", "report_summary", "arithmetic_mc",
         "weekday_reasoning", "word_problems"]


def test_the_track_board_and_compare_render_in_chromium(board_url, tmp_path):
    """Issue 17 in a real browser: the track selector, the unranked partial section, a paired verdict."""
    from playwright.sync_api import sync_playwright
    strong = seed_scored_model("strong-model", {t: 0.9 for t in TASKS}, samples=60)
    weak = seed_scored_model("weak-model", {t: 0.3 for t in TASKS}, samples=60)
    seed_scored_model("partial-model", {"world_facts": 0.5})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(board_url)
            page.get_by_text("Not ranked: partial coverage").wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            body = page.locator("body").inner_text()
            assert "Track" in body and "language-core@" in body
            page.screenshot(path=str(tmp_path / "board-track.png"), full_page=True)
            page.goto(f"{board_url}/compare?ids={strong},{weak}")
            page.get_by_text("Paired verdicts").wait_for(timeout=30_000)
            page.wait_for_timeout(1000)
            body = page.locator("body").inner_text()
            assert "strong-model beats weak-model on overall" in body, body[-2000:]
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
            assert "Traceback" not in body and "None" not in body.split("Paired verdicts")[1]
        finally:
            browser.close()
