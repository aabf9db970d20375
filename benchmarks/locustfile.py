"""Read traffic for the proof's load test: what board viewers and API clients ask for most."""
import os

from locust import FastHttpUser, between, tag, task

# The track read (the proof seeds 10,000 models on its own 30-task track); empty: the default track.
TRACK = f"&track={os.environ['BOARD_TRACK']}" if os.environ.get("BOARD_TRACK") else ""


class BoardViewer(FastHttpUser):
    """FastHttpUser (geventhttpclient): the load generator shares the server's two cores, and requests'
    client costs several times more CPU per request. It asks for gzip, as browsers do."""

    wait_time = between(0, 0.05)

    @tag("leaderboard")
    @task(6)
    def leaderboard_page(self):
        self.client.get(f"/api/v1/leaderboard?limit=50{TRACK}", name="/api/v1/leaderboard")

    @tag("leaderboard")
    @task(2)
    def leaderboard_filtered(self):
        self.client.get(f"/api/v1/leaderboard?limit=50&q=family:causal-lm&sort=-overall{TRACK}",
                        name="/api/v1/leaderboard (filtered)")

    @tag("reads")
    @task(1)
    def suites(self):
        self.client.get("/api/v1/suites")

    @tag("reads")
    @task(1)
    def queue(self):
        self.client.get("/api/v1/queue")

    @tag("trivial")
    @task(1)
    def trivial(self):
        self.client.get("/api/v1/hardware-classes")
