"""Moderation stands until an admin lifts it; a hidden or withdrawn model's data is its owner's and the
admins' only; the public reads failures as a kind and one line, never host paths or tracebacks."""
import psycopg
import pytest

from core.models import Status
from tests.api.test_admin import admin_headers
from tests.conftest import DATABASE_URL, make_token
from tests.seed import seed_scored_model, seed_submission

ERROR = ("the checkpoint could not be loaded: OSError: /srv/evalboard/.evalboard/artifacts/ab12/model.safetensors: "
         "header too large\nTraceback (most recent call last):\n"
         '  File "/usr/lib/python3.12/site-packages/safetensors/torch.py", line 311, in load_file')
LOG_TAIL = ('Traceback (most recent call last):\n  File "/usr/lib/python3.12/site-packages/safetensors/torch.py"\n'
            "OSError: /srv/evalboard/.evalboard/artifacts/ab12/model.safetensors: header too large")


def ids() -> tuple[int, str, str]:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT m.id, s.id::text, r.id::text FROM model m JOIN submission s ON s.model_id = m.id "
                            "JOIN run r ON r.submission_id = s.id ORDER BY r.task LIMIT 1").fetchone()


def moderation(model_id: int) -> tuple:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT hidden, flagged, flag_reason FROM model WHERE id = %s", (model_id,)).fetchone()


def test_an_owners_rerun_keeps_an_admins_hide_and_flag_and_the_owner_sees_why(client, auth):
    admin = admin_headers()
    mid = seed_scored_model("tiny", {"world_facts": 0.5})  # alice's, the owner behind `auth`
    _, sid, _ = ids()
    assert client.post(f"/api/v1/admin/models/{mid}/flag", json={"reason": "trained on the test split"},
                       headers=admin).status_code == 200
    assert client.post(f"/api/v1/admin/models/{mid}/hide", json={"reason": "weights copied from another entry"},
                       headers=admin).status_code == 200

    assert client.post(f"/api/v1/submissions/{sid}/rerun", headers=auth).status_code == 200
    assert moderation(mid) == (True, True, "trained on the test split")
    assert client.get("/api/v1/leaderboard", params={"include_flagged": True}).json()["total"] == 0

    mine = client.get(f"/api/v1/submissions/{sid}", headers=auth).json()
    assert mine["visibility"] == "hidden" and mine["hidden_reason"] == "weights copied from another entry"
    model = client.get(f"/api/v1/models/{mid}", headers=auth).json()["model"]
    assert model["visibility"] == "hidden" and model["hidden_reason"] == "weights copied from another entry"

    # The owner's own withdrawal and its undoing (a rerun) leave the admin's hide where it was.
    assert client.post(f"/api/v1/submissions/{sid}/cancel", headers=auth).status_code == 200
    assert client.post(f"/api/v1/submissions/{sid}/withdraw", headers=auth).status_code == 200
    assert client.post(f"/api/v1/submissions/{sid}/rerun", headers=auth).status_code == 200
    assert moderation(mid)[0] is True
    # Only an admin lifts it.
    assert client.delete(f"/api/v1/admin/models/{mid}/hide", headers=admin).status_code == 200
    assert moderation(mid)[0] is False


def test_an_admin_lifting_a_hide_does_not_publish_what_its_owner_withdrew(client, auth):
    admin = admin_headers()
    mid = seed_scored_model("tiny", {"world_facts": 0.5})
    _, sid, _ = ids()
    assert client.post(f"/api/v1/submissions/{sid}/withdraw", headers=auth).status_code == 200
    client.post(f"/api/v1/admin/models/{mid}/hide", headers=admin)
    client.delete(f"/api/v1/admin/models/{mid}/hide", headers=admin)
    assert client.get("/api/v1/leaderboard").json()["total"] == 0
    assert client.get(f"/api/v1/submissions/{sid}", headers=auth).json()["visibility"] == "withdrawn"


@pytest.mark.parametrize("how", ["hidden by an admin", "withdrawn by its owner"])
def test_a_private_models_data_is_404_to_all_but_its_owner_and_admins(client, auth, how):
    admin = admin_headers()
    mid = seed_scored_model("private", {"world_facts": 0.5}, samples=3)
    _, sid, rid = ids()
    if how.startswith("hidden"):
        assert client.post(f"/api/v1/admin/models/{mid}/hide", headers=admin).status_code == 200
    else:
        assert client.post(f"/api/v1/submissions/{sid}/withdraw", headers=auth).status_code == 200
    urls = [f"/api/v1/submissions/{sid}", f"/api/v1/submissions/{sid}/results",
            *(f"/api/v1/submissions/{sid}/results?format={f}" for f in ("csv", "lm-eval", "model-index")),
            f"/api/v1/runs/{rid}", f"/api/v1/runs/{rid}/samples.jsonl", f"/api/v1/models/{mid}"]
    mallory = {"Authorization": f"Bearer {make_token('mallory')}"}
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers=mallory).status_code == 404, url
        assert client.get(url, headers=auth).status_code == 200, url
        assert client.get(url, headers=admin).status_code == 200, url
    # Indistinguishable from an id that never existed.
    unknown = client.get("/api/v1/runs/00000000-0000-0000-0000-000000000000").json()
    assert client.get(f"/api/v1/runs/{rid}").json()["detail"] == unknown["detail"].replace(
        "00000000-0000-0000-0000-000000000000", rid)
    other = seed_scored_model("public", {"world_facts": 0.4}, owner="carol")
    assert client.get(f"/api/v1/compare?ids={other},{mid}").status_code == 404
    assert client.get(f"/api/v1/compare?ids={other},{mid}", headers=auth).status_code == 200


def test_the_queue_does_not_list_a_hidden_models_submissions(client):
    admin = admin_headers()
    hidden = seed_submission("secret", {"world_facts": Status.queued}, owner="bob")
    shown = seed_submission("open", {"world_facts": Status.queued}, owner="carol")
    with psycopg.connect(DATABASE_URL) as conn:
        mid = conn.execute("SELECT model_id FROM submission WHERE id = %s", (hidden,)).fetchone()[0]
    client.post(f"/api/v1/admin/models/{mid}/hide", headers=admin)
    queue = client.get("/api/v1/queue").json()
    assert [s["id"] for s in queue["submissions"]] == [shown]
    assert hidden not in client.get("/api/v1/queue").text
    assert queue["hardware"]["cpu"]["queued"] == 2  # positions still count every queued run


def test_the_public_sees_the_error_kind_and_one_line_the_owner_sees_the_log(client):
    sid = seed_submission("broken", {"world_facts": Status.failed}, owner="bob", error=ERROR)
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("UPDATE run SET provenance = jsonb_build_object('log_tail', %s::text)", (LOG_TAIL,))
        conn.execute("UPDATE submission SET error = %s", (f"world_facts: {ERROR}",))
    mid, _, rid = ids()
    public = [client.get(f"/api/v1/submissions/{sid}"), client.get(f"/api/v1/runs/{rid}"),
              client.get("/api/v1/queue"), client.get(f"/api/v1/models/{mid}")]
    for response in public:
        assert response.status_code == 200
        assert "/srv" not in response.text and "/usr/lib" not in response.text, response.request.url
        assert "Traceback" not in response.text and "site-packages" not in response.text, response.request.url
    run = public[0].json()["runs"][0]
    assert run["error_kind"] == "user" and run["log_tail"] is None
    assert run["error"].startswith("the checkpoint could not be loaded: OSError:") and "header too large" in run["error"]
    assert "\n" not in run["error"]
    assert public[2].json()["failures"][0]["error_kind"] == "user"

    owner = {"Authorization": f"Bearer {make_token('bob')}"}
    mine = client.get(f"/api/v1/submissions/{sid}", headers=owner).json()["runs"][0]
    assert mine["error"] == ERROR and mine["log_tail"] == LOG_TAIL
    assert client.get(f"/api/v1/runs/{rid}", headers=owner).json()["provenance"]["log_tail"] == LOG_TAIL
