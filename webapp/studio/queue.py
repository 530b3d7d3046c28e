"""A person's own queue for the studio's "my queue" panel: active generations, positions and rough waits."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..generations import generation_state
from ..tables import ACTIVE_STATUSES, Generation, GenerationStatus

RECENT_RUNS = 20  # finished runs whose average duration estimates a queued generation's wait


def average_run_seconds() -> float | None:
    """The mean duration of the site's latest successful runs, or None before the first."""
    rows = db.session.execute(
        select(Generation.started_at, Generation.finished_at)
        .where(Generation.status == GenerationStatus.SUCCEEDED, Generation.started_at.is_not(None),
               Generation.finished_at.is_not(None))
        .order_by(Generation.finished_at.desc()).limit(RECENT_RUNS)).all()
    durations = [(finished - started).total_seconds() for started, finished in rows]
    return sum(durations) / len(durations) if durations else None


def my_queue(user_id: int) -> list[dict]:
    """The person's queued and running generations, oldest first, each as ``generation_state`` JSON.

    A queued one's ``eta_seconds`` is its queue position times the recent average run (a rough guide).
    """
    generations = db.session.scalars(
        select(Generation).where(Generation.user_id == user_id, Generation.status.in_(list(ACTIVE_STATUSES)))
        .order_by(Generation.created_at, Generation.id)).all()
    states = [generation_state(generation) for generation in generations]
    average = None
    for state in states:
        if state["status"] == GenerationStatus.QUEUED and state["queue_position"]:
            average = average if average is not None else average_run_seconds()
            if average is not None:
                state["eta_seconds"] = round(state["queue_position"] * average, 1)
    return states
