"""Admins manage users and tokens and moderate the board; authors cannot."""
import psycopg

from tests.conftest import DATABASE_URL
from tests.seed import seed_scored_model


def admin_headers() -> dict:
    from core.crud import create_token, create_user
    from core.db import session_scope
    from core.models import Role
    with session_scope() as s:
        token = create_token(session=s, user=create_user(session=s, name="root", role=Role.admin))
    return {"Authorization": f"Bearer {token}"}


def model_id() -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT id FROM model").fetchone()[0]


def test_an_author_cannot_use_admin_actions(client, auth):
    response = client.get("/api/v1/admin/users", headers=auth)
    assert response.status_code == 403 and "admin" in response.json()["detail"]


def test_admin_creates_a_user_and_a_token_that_works_then_revokes_it(client):
    admin = admin_headers()
    assert client.post("/api/v1/admin/users", json={"name": "carol"}, headers=admin).status_code == 201
    assert client.post("/api/v1/admin/users", json={"name": "carol"}, headers=admin).status_code == 422
    token = client.post("/api/v1/admin/users/carol/tokens", headers=admin).json()["token"]
    carol = {"Authorization": f"Bearer {token}"}
    # a valid token: an empty upload is refused for its content, not for the token
    upload = {"url": "/api/v1/checkpoints", "params": {"family": "causal-lm"}, "content": b""}
    assert client.post(**upload, headers=carol).status_code == 422
    users = {u["name"]: u for u in client.get("/api/v1/admin/users", headers=admin).json()}
    assert users["carol"]["active_tokens"] == 1 and users["root"]["role"] == "admin"
    assert client.delete("/api/v1/admin/users/carol/tokens", headers=admin).json()["active_tokens"] == 0
    assert client.post(**upload, headers=carol).status_code == 401


def test_flag_shows_its_reason_on_the_board_and_hide_removes_the_model(client):
    admin = admin_headers()
    seed_scored_model("suspicious", {"world_facts": 0.99})
    mid = model_id()
    reason = "trained on the test split"
    assert client.post(f"/api/v1/admin/models/{mid}/flag", json={"reason": reason}, headers=admin).status_code == 200
    rows = client.get("/api/v1/leaderboard", params={"include_flagged": "true"}).json()["rows"]
    assert rows[0]["flagged"] and rows[0]["flag_reason"] == reason
    assert client.post(f"/api/v1/admin/models/{mid}/hide", headers=admin).status_code == 200
    assert client.get("/api/v1/leaderboard", params={"include_flagged": "true"}).json()["total"] == 0
    assert client.delete(f"/api/v1/admin/models/{mid}/hide", headers=admin).status_code == 200
    assert client.get("/api/v1/leaderboard", params={"include_flagged": "true"}).json()["total"] == 1


def test_flag_without_a_reason_is_422(client):
    seed_scored_model("m", {"world_facts": 0.5})
    response = client.post(f"/api/v1/admin/models/{model_id()}/flag", json={}, headers=admin_headers())
    assert response.status_code == 422 and "reason" in response.json()["detail"]
