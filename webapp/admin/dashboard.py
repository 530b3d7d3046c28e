"""Admin dashboard: queue depth, workers and what they run, recent generations, failed jobs."""
from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, url_for
from redis.exceptions import RedisError

from ..access import viewable_generation_or_404
from .base import acting_admin, back, bp
from .forms import ActionForm
from .queue_status import (
    JobActionRefused,
    cancel_as_admin,
    discard_failed_job,
    generation_counts,
    queue_overview,
    retry_failed_job,
)
from .throughput import last_hour

REDIS_DOWN = "Redis is not reachable, so queues, workers and failed jobs cannot be shown. Generations cannot start."


@bp.get("/")
def dashboard():
    """Queues, workers, the last day's generations and the failed jobs (with retry and discard)."""
    try:
        overview, redis_error = queue_overview(), None
    except RedisError:
        overview, redis_error = None, REDIS_DOWN
    return render_template("admin/dashboard.html", overview=overview, redis_error=redis_error,
                           counts=generation_counts(), charts=last_hour(), form=ActionForm())


@bp.get("/charts")
def charts():
    """The last hour's charts alone, for the dashboard to poll."""
    return render_template("admin/_charts.html", charts=last_hour())


def _job_action(action: Callable, job_id: str, done: str):
    try:
        action(acting_admin(), job_id)
    except JobActionRefused as exc:
        flash(str(exc), "warning")
    except RedisError:
        flash(REDIS_DOWN, "danger")
    else:
        flash(done, "success")
    return back("admin.dashboard")


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    """Put a failed job back on its queue."""
    return _job_action(retry_failed_job, job_id, "The job is back on its queue.")


@bp.post("/jobs/<job_id>/discard")
def discard_job(job_id: str):
    """Remove a failed job for good."""
    return _job_action(discard_failed_job, job_id, "The failed job is discarded.")


@bp.post("/generations/<generation_id>/cancel")
def cancel_generation(generation_id: str):
    """Stop someone's queued or running generation (audited; owners use the studio's cancel)."""
    generation = viewable_generation_or_404(generation_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if cancel_as_admin(acting_admin(), generation):
        flash("Canceled by an admin: the owner sees it as canceled.", "info")
    else:
        flash("That generation has already finished.", "info")
    return redirect(url_for("studio.generation_page", generation_id=generation.id), 303)
