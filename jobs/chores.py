"""Chores run on the ``default`` queue: small, idempotent, safe to repeat."""
from __future__ import annotations

import logging

from rq.registry import StartedJobRegistry

from webapp.cleanup import delete_expired_images
from webapp.queues import generation_queues

from .app_context import with_app

log = logging.getLogger(__name__)


@with_app
def reap_abandoned_generations() -> None:
    """Settle jobs whose worker died mid-way.

    RQ's cleanup of the started registry retries them or moves them to failed, calling the
    job's failure callback, which marks the generation row.
    """
    for queue in generation_queues():
        StartedJobRegistry(queue=queue).cleanup()


@with_app
def cleanup() -> dict:
    """Delete expired images, orphan files and generations that never finished (daily, from cron)."""
    return delete_expired_images().counts()
