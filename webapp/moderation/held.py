"""Pictures the safety check holds (webapp/safety.py): the admins' queue, and releasing one (audited)."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..tables import Image, User
from .audit import record


def held_queue(limit: int = 100) -> list[Image]:
    """Held pictures, the longest-waiting first."""
    return list(db.session.scalars(select(Image).where(Image.is_held.is_(True))
                                   .order_by(Image.created_at, Image.id).limit(limit)))


def held_count() -> int:
    """How many pictures wait for a review."""
    return db.session.scalar(select(func.count()).select_from(Image).where(Image.is_held.is_(True))) or 0


def describe_findings(image: Image) -> str:
    """The detector's labels and scores, as the audit log and the queue show them."""
    return ", ".join(f"{label} {score:.2f}" for label, score in (image.safety_labels or [])) or "no findings"


def release(actor: User, image: Image, note: str = "") -> bool:
    """Release a held picture: its owner may publish and share it again (audited). False: it was not held.

    Args:
        actor: the admin, or the manager of a group the owner is in (the caller checks which).
        image: the held picture.
        note: who acted as what (``as admin``, ``as manager of group class-a``).
    """
    if not image.is_held:
        return False
    details = f"{note}; owner user {image.user_id}; {image.held_reason or 'held'}; detector: {describe_findings(image)}"
    image.is_held = False
    image.held_reason = None  # the detector's findings stay in safety_labels
    record(actor, "image.release", "image", image.id, details.lstrip("; "))
    db.session.commit()
    return True
