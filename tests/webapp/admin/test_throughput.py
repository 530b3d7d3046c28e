"""The admin dashboard's last-hour charts (``webapp/admin/throughput.py``)."""
from __future__ import annotations

from datetime import timedelta

from redis import Redis

from tests.support import add_generation, sign_in
from webapp.extensions import db
from webapp.queues import record_batch
from webapp.tables import Generation, utcnow


def test_last_hour_throughput_batch_sizes_and_queue_wait(app, make_user, redis_url):
    make_user("root@example.com", is_admin=True)
    admin = sign_in(app, "root@example.com")
    ada = make_user("ada@example.com")
    ids = [add_generation(app, ada, "succeeded", age=timedelta(minutes=10)) for _ in range(5)]
    now = utcnow()
    with app.app_context():
        for n, (wait, generation_id) in enumerate(zip([1, 2, 3, 4, 40], ids, strict=True)):
            generation = db.session.get(Generation, generation_id)
            generation.started_at = generation.created_at + timedelta(seconds=wait)
            generation.finished_at, generation.num_images = now - timedelta(minutes=n), 2
        db.session.commit()
    redis = Redis.from_url(redis_url)
    for size in (4, 4, 1):
        record_batch(redis, size, 2.0)
    redis.rpush("easel:stats:batches", f"{(now - timedelta(hours=2)).timestamp():.0f}:3:1.0")  # too old to count
    html = admin.get("/admin/").get_data(as_text=True)
    assert "10 images in the last hour" in html
    assert "3 pipeline calls, 3.0 generations each on average" in html
    assert "p50 3.0 s, p95 32.8 s (5 started)" in html
    assert html.count("<rect ") == 60 + 8 + 2


def test_charts_alone_for_polling_admins_only(app, make_user):
    make_user("root@example.com", is_admin=True)
    make_user("ada@example.com")
    fragment = sign_in(app, "root@example.com").get("/admin/charts")
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert 'id="last-hour"' in html and "0 images in the last hour" in html and "<html" not in html
    assert sign_in(app, "ada@example.com").get("/admin/charts").status_code in {403, 404}
