"""A paused Redis never holds up a status poll: the answer comes from the database at once, saying so."""
from __future__ import annotations

import time

from redis import Redis

from tests.support import add_generation, state, wait_for
from webapp import progress
from webapp.generations import LIVE_UNAVAILABLE
from webapp.services import QUICK_READ_TIMEOUT

PAUSE_MS = 4000


def test_status_polls_answer_fast_while_redis_is_paused(app, signed_in, redis_url):
    user_id = 1
    running = add_generation(app, user_id, "running")
    queued = add_generation(app, user_id, "queued")
    with Redis.from_url(redis_url) as redis:
        progress.start(redis, running, 4)
        progress.record_step(redis, running, 2)
        assert state(signed_in, running)["step"] == 2
        redis.client_pause(PAUSE_MS, all=True)
    began = time.monotonic()
    for generation_id in (running, queued):
        polled = time.monotonic()
        answer = state(signed_in, generation_id)
        assert time.monotonic() - polled < 3 * QUICK_READ_TIMEOUT, "a poll waited on the paused Redis"
        assert answer["notice"] == LIVE_UNAVAILABLE and answer["error"] is None
    assert answer["status"] == "queued" and answer["queue_position"] is None
    page = signed_in.get(f"/generations/{running}")
    assert page.status_code == 200 and LIVE_UNAVAILABLE in page.get_data(as_text=True)
    assert time.monotonic() - began < PAUSE_MS / 1000, "the pause ended before the polls did"

    # Once Redis answers again, so does the live progress.
    back = wait_for(lambda: (s := state(signed_in, running))["notice"] is None and s, timeout=10, interval=0.2,
                    message="live progress to come back")
    assert back["step"] == 2
