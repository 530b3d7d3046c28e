"""The last hour on the admin dashboard: images per minute, batch sizes, queue wait, as small SVG bar charts."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select

from .. import services
from ..extensions import db
from ..queues import BATCH_LOG
from ..tables import Generation, GenerationStatus, utcnow

WIDTH, HEIGHT = 300, 80  # the charts' viewBox


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT


def bar_chart(title: str, summary: str, values: list[float], labels: list[str]) -> Chart:
    """Bars scaled to the largest value; each bar's label is its tooltip."""
    top = max(values, default=0) or 1
    step = WIDTH / max(1, len(values))
    bars = [Bar(x=round(i * step, 2), y=round(HEIGHT - HEIGHT * v / top, 2), width=round(step * 0.85, 2),
                height=round(HEIGHT * v / top, 2), label=label) for i, (v, label) in enumerate(zip(values, labels, strict=True))]
    return Chart(title, summary, bars)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5, 0.95) of ``values``; 0 when empty."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _batches(since: datetime) -> list[int]:
    """Generations in each pipeline call since ``since``, from the workers' log in Redis."""
    cutoff = (since - datetime(1970, 1, 1)).total_seconds()
    calls = []
    for raw in services.redis().lrange(BATCH_LOG, 0, -1):
        stamp, generations = raw.decode().split(":")[:2]
        if float(stamp) < cutoff:
            break
        calls.append(int(generations))
    return calls


def last_hour(now: datetime | None = None) -> list[Chart]:
    """Images per minute, batch sizes and queue wait p50/p95 over the last hour."""
    now = now or utcnow()
    since = now - timedelta(hours=1)
    finished = db.session.execute(select(Generation.finished_at, Generation.num_images).where(
        Generation.status == GenerationStatus.SUCCEEDED, Generation.finished_at >= since)).all()
    per_minute = [0.0] * 60
    for finished_at, images in finished:
        per_minute[min(59, int((finished_at - since).total_seconds() // 60))] += images
    waits = [(started - created).total_seconds() for started, created in db.session.execute(
        select(Generation.started_at, Generation.created_at).where(Generation.started_at >= since)).all()]
    charts = [bar_chart("Images per minute", f"{sum(per_minute):.0f} images in the last hour", per_minute,
                        [f"{60 - i} min ago: {v:.0f}" for i, v in enumerate(per_minute)])]
    try:
        calls = _batches(since)
    except RedisError:
        calls = []
    sizes = [calls.count(size) for size in range(1, 9)]
    mean = statistics.fmean(calls) if calls else 0
    charts.append(bar_chart("Batch sizes", f"{len(calls)} pipeline calls, {mean:.1f} generations each on average",
                            sizes, [f"{n} calls of {size} generation(s)" for size, n in enumerate(sizes, 1)]))
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    charts.append(bar_chart("Queue wait", f"p50 {p50:.1f} s, p95 {p95:.1f} s ({len(waits)} started)", [p50, p95],
                            [f"p50: {p50:.1f} s", f"p95: {p95:.1f} s"]))
    return charts
