"""Locust users for ``make loadtest``: people watching their progress pages, and people making pictures.

Run by ``tests/load/run.py`` (which starts the site and signs the accounts up); the accounts come in
``EASEL_LOAD_ACCOUNTS`` (``email:password`` pairs, comma-separated). Every user signs in through the
real form. Submitters post the studio form and follow their generation to the end; pollers poll the
status JSON of the latest generation of the account they share, once a second, as the progress page does.
"""
from __future__ import annotations

import itertools
import json
import os
import re

from locust import HttpUser, between, constant_pacing, events, task

STATUS = "/api/generations/[id]"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
FINAL = {"succeeded", "failed", "canceled"}
FORM = {"prompt": "a lighthouse at dusk", "negative_prompt": "", "model": "easel-tiny", "width": "64",
        "height": "64", "steps": "2", "guidance": "5.0", "seed": "", "num_images": "1", "style": "none"}

ACCOUNTS = [tuple(pair.split(":", 1)) for pair in os.environ.get("EASEL_LOAD_ACCOUNTS", "").split(",") if pair]
_counters: dict[str, itertools.count] = {}
LATEST: dict[str, str] = {}  # account email -> its latest generation id (users share this process)
SERVER_ERRORS: list[str] = []
SIGNED_IN: list[str] = []
MEASURED_SECONDS = float(os.environ.get("EASEL_LOAD_SECONDS", "60"))


def _measure(environment) -> None:
    """Once everyone is signed in: forget the sign-in storm (password hashing), load for a minute, stop."""
    import gevent

    environment.stats.reset_all()
    gevent.sleep(MEASURED_SECONDS)
    environment.runner.quit()


@events.request.add_listener
def count_server_errors(request_type, name, response, exception, **kwargs) -> None:
    """Every 5xx (and every request that got no answer at all) fails the run."""
    status = getattr(response, "status_code", 0) if response is not None else 0
    if status >= 500 or (status == 0 and exception is not None):
        SERVER_ERRORS.append(f"{request_type} {name}: {status or exception}")


@events.quitting.add_listener
def judge(environment, **kwargs) -> None:
    """Exit non-zero when the status p95 is over the bound or anything got a 5xx; write the numbers."""
    bound = float(os.environ.get("EASEL_LOAD_P95_MS", "50"))
    status = environment.stats.get(STATUS, "GET")
    total = environment.stats.total
    summary = {
        "status_requests": status.num_requests,
        "status_p50_ms": status.get_response_time_percentile(0.5),
        "status_p95_ms": status.get_response_time_percentile(0.95),
        "status_p99_ms": status.get_response_time_percentile(0.99),
        "submits": environment.stats.get("/generations", "POST").num_requests,
        "requests": total.num_requests,
        "requests_per_second": round(total.total_rps, 1),
        "server_errors": len(SERVER_ERRORS),
        "server_error_examples": SERVER_ERRORS[:5],
    }
    problems = []
    if not status.num_requests:
        problems.append("no status request was made")
    elif summary["status_p95_ms"] > bound:
        problems.append(f"status p95 {summary['status_p95_ms']} ms is over {bound:g} ms")
    if SERVER_ERRORS:
        problems.append(f"{len(SERVER_ERRORS)} request(s) got a 5xx or no answer")
    summary["problems"] = problems
    if path := os.environ.get("EASEL_LOAD_SUMMARY"):
        with open(path, "w") as out:
            json.dump(summary, out, indent=2)
    environment.process_exit_code = 1 if problems else 0


class Person(HttpUser):
    """Signs in as one of the shared accounts."""

    abstract = True

    def on_start(self) -> None:
        # Submitter i and pollers i, i + 10, ... share account i, so every account has its maker and its watchers.
        turn = next(_counters.setdefault(type(self).__name__, itertools.count()))
        self.email, password = ACCOUNTS[turn % len(ACCOUNTS)]
        try:
            token = self.csrf("/auth/login")
            self.client.post("/auth/login", data={"email": self.email, "password": password, "csrf_token": token},
                             allow_redirects=False)
        finally:  # a failed sign-in is counted by the stats; the measurement must start all the same
            SIGNED_IN.append(self.email)
        if len(SIGNED_IN) == self.environment.runner.target_user_count:
            import gevent

            gevent.spawn(_measure, self.environment)

    def csrf(self, path: str) -> str:
        match = CSRF_RE.search(self.client.get(path).text)
        return (match.group(1) or match.group(2)) if match else ""

    def poll(self, generation_id: str) -> dict | None:
        with self.client.get(f"/api/generations/{generation_id}", name=STATUS, catch_response=True) as response:
            # a 5xx is counted by ``count_server_errors``; anything else but 200 is a failure too
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return None
            return response.json()


class Submitter(Person):
    """Makes a picture, watches it to the end, thinks a moment, makes another."""

    fixed_count = int(os.environ.get("EASEL_LOAD_SUBMITTERS", "10"))
    wait_time = between(1, 3)

    @task
    def make_a_picture(self) -> None:
        data = {**FORM, "csrf_token": self.csrf("/")}
        with self.client.post("/generations", data=data, allow_redirects=False, catch_response=True) as response:
            if response.status_code == 429:  # over the queued limit or the quota: a clear refusal, not a failure
                response.success()
                return
            if response.status_code != 303:
                response.failure(f"submit answered {response.status_code}")
                return
            generation_id = response.headers["Location"].rsplit("/", 1)[-1]
        LATEST[self.email] = generation_id
        while (state := self.poll(generation_id)) is not None and state["status"] not in FINAL:
            self._sleep(1)

    def _sleep(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)


class Poller(Person):
    """Keeps a progress page open: the status JSON once a second."""

    fixed_count = int(os.environ.get("EASEL_LOAD_POLLERS", "50"))
    wait_time = constant_pacing(1)

    @task
    def watch(self) -> None:
        generation_id = LATEST.get(self.email)
        if generation_id:
            self.poll(generation_id)
