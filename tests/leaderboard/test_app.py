"""The Streamlit page, run by AppTest against a real API server on loopback."""
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.seed import seed_scored_model

APP = str(ROOT / "leaderboard" / "app.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_url():
    from api.main import app
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/api/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=5)


def run_app(monkeypatch, url: str) -> AppTest:
    monkeypatch.setenv("EVALBOARD_API_URL", url)
    return AppTest.from_file(APP, default_timeout=30).run()


def test_ranked_models_with_their_scores(monkeypatch, api_url):
    seed_scored_model("strong-model", {"world_facts": 0.85, "arithmetic_mc": 0.70})
    seed_scored_model("weak-model", {"world_facts": 0.30, "arithmetic_mc": 0.25})
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["strong-model", "weak-model"]
    assert list(table["rank"]) == [1, 2]
    # normalised to chance (0.25): 0.85 → 80.0, 0.70 → 60.0; overall is their mean
    assert table.loc[0, "understanding"] == 80.0 and table.loc[0, "cognition"] == 60.0
    assert table.loc[0, "overall"] == 70.0


def test_empty_board_says_so(monkeypatch, api_url):
    at = run_app(monkeypatch, api_url)
    assert not at.exception
    assert "No models have been scored yet" in at.info[0].value


def test_api_down_is_explained_in_words(monkeypatch):
    at = run_app(monkeypatch, f"http://127.0.0.1:{_free_port()}")
    assert not at.exception
    assert "cannot be reached" in at.error[0].value
