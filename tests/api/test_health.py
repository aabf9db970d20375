import subprocess
import sys

from tests.conftest import ROOT


def test_health_is_ok_with_postgres_and_redis_up(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}


def test_health_is_503_when_redis_is_down(client, monkeypatch):
    from redis import Redis
    import api.routes.health as health
    monkeypatch.setattr(health, "get_redis", lambda: Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("down")


def test_health_is_503_when_postgres_is_down(client, monkeypatch):
    from sqlmodel import create_engine
    import api.routes.health as health
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    monkeypatch.setattr(health, "get_engine", lambda: dead)
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["postgres"].startswith("down")


def test_the_api_process_never_imports_torch():
    code = "import sys, api.main; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_an_id_past_the_database_integer_range_is_422_not_500(client):
    response = client.get("/api/v1/models/19986668963414364")
    assert response.status_code == 422 and "out of range" in response.json()["detail"]


def test_framework_errors_are_problem_json_too(client, auth):
    bad_body = client.post("/api/v1/submissions", content=b"{not json", headers={**auth,
                                                                                 "Content-Type": "application/json"})
    unknown = client.get("/api/v1/no-such-route")
    for response, status in ((bad_body, 422), (unknown, 404)):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert {"title", "status", "detail"} <= set(response.json())
