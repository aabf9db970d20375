"""Read traffic for the proof's load test: what board viewers and API clients ask for most."""
from locust import HttpUser, between, tag, task


class BoardViewer(HttpUser):
    wait_time = between(0, 0.05)

    @tag("leaderboard")
    @task(6)
    def leaderboard_page(self):
        self.client.get("/api/v1/leaderboard?limit=50", name="/api/v1/leaderboard")

    @tag("leaderboard")
    @task(2)
    def leaderboard_filtered(self):
        self.client.get("/api/v1/leaderboard?limit=50&q=family:causal-lm&sort=-overall",
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
