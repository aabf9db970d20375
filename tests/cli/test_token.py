import subprocess
import sys

import psycopg

from tests.conftest import DATABASE_URL, ROOT


def test_token_create_prints_a_working_token_and_stores_only_its_hash(client):
    out = subprocess.run([sys.executable, "-m", "cli.main", "token", "create", "--user", "bob"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    token = out.stdout.strip()
    assert token.startswith("evb_") and len(token) > 30
    with psycopg.connect(DATABASE_URL) as conn:
        stored = [row[0] for row in conn.execute("SELECT token_hash FROM api_token")]
    assert len(stored) == 1 and token not in stored[0]
    # The token authenticates: an upload without a body is refused for its content, not for the token.
    response = client.post("/api/v1/checkpoints", params={"family": "causal-lm"}, content=b"",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and "empty" in response.json()["detail"]
