"""Database tables: the truth about users, generations and images."""
from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .config import PASSWORD_METHOD
from .extensions import db
from .prompt_search import add_picks_index, add_prompt_index


def utcnow() -> datetime:
    """Naive UTC now: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


STYLE_MAX = 200  # characters of Generation.style


def new_id() -> str:
    """A random UUID as text: the id of generations, images and their RQ jobs."""
    return str(uuid.uuid4())


ANONYMOUS_NAME = "Anonymous artist"


def password_method() -> str:
    """How new passwords are hashed: the ``PASSWORD_METHOD`` setting (scrypt; see ``webapp.config``)."""
    return current_app.config.get("PASSWORD_METHOD", PASSWORD_METHOD)


class User(UserMixin, db.Model):
    """A person with an account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_banned: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to end every session of this user (password change, reset, ban).
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    # The person's share of the generation queue (2: twice everyone else's); Redis holds a copy for the fair
    # queue's script (webapp/queue_weights.py).
    queue_weight: Mapped[float] = mapped_column(Float, default=1.0, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    generations: Mapped[list[Generation]] = relationship(back_populates="user", passive_deletes=True)

    @staticmethod
    def normalize_email(email: str) -> str:
        """Emails are unique case-insensitively: store them stripped and lower-cased."""
        return email.strip().lower()

    def set_password(self, password: str) -> None:
        """Hash and store a new password."""
        self.password_hash = generate_password_hash(password, method=password_method())

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def end_sessions(self) -> None:
        """Invalidate every session and remember-me cookie of this user."""
        self.session_version = (self.session_version or 0) + 1

    # This browser's session id (not a column): set at sign-in and by the user loader, and kept in Redis
    # while the session lives (webapp/auth/session.py), so signing out ends it on the server.
    session_id = None

    def get_id(self) -> str:
        """Flask-Login's id: the user, the session version (bumped: out everywhere) and this session's id."""
        return f"{self.id}:{self.session_version or 0}:{self.session_id or ''}"

    @property
    def is_active(self) -> bool:
        """Banned users cannot sign in or stay signed in."""
        return not self.is_banned

    @property
    def name(self) -> str:
        """What the person and admins see: the display name, else the part of the email before the @."""
        return self.display_name or self.email.split("@", 1)[0]

    @property
    def public_name(self) -> str:
        """What other people see: the display name, else a neutral name (never a piece of the email)."""
        return self.display_name or ANONYMOUS_NAME


class Source(enum.StrEnum):
    """Where a generation starts from: words, an upload, another image (image-to-image, variation), an upscale."""

    TEXT = "text"
    UPLOAD = "upload"
    IMAGE = "image"
    VARIATION = "variation"
    UPSCALE = "upscale"
    INPAINT = "inpaint"  # part of an image repainted through a mask (webapp/editing.py)
    OUTPAINT = "outpaint"  # an image continued beyond its border
    HIRES = "hires"  # an image's hires fix: enlarged, then image-to-image at the larger size (its second pass)
    GRID = "grid"  # an X/Y/Z grid's picture, drawn from its cells' pictures


class GenerationStatus(enum.StrEnum):
    """Where a generation is: queued → running → succeeded | failed | canceled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """True for the statuses that never change again."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({GenerationStatus.SUCCEEDED, GenerationStatus.FAILED, GenerationStatus.CANCELED})
ACTIVE_STATUSES = frozenset({GenerationStatus.QUEUED, GenerationStatus.RUNNING})

# Every move a generation's status may make; ``webapp.lifecycle`` is the only writer of the column.
TRANSITIONS: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    # a worker takes it; canceled before it started; enqueueing failed, or it stalled, or its job was lost
    GenerationStatus.QUEUED: frozenset({GenerationStatus.RUNNING, GenerationStatus.CANCELED, GenerationStatus.FAILED}),
    # finished, failed or canceled; back to the queue when RQ retries it after a transient error
    GenerationStatus.RUNNING: frozenset({GenerationStatus.SUCCEEDED, GenerationStatus.FAILED,
                                         GenerationStatus.CANCELED, GenerationStatus.QUEUED}),
    GenerationStatus.FAILED: frozenset({GenerationStatus.QUEUED}),  # an admin retries its failed job
    GenerationStatus.SUCCEEDED: frozenset(),
    GenerationStatus.CANCELED: frozenset(),
}


class Generation(db.Model):
    """One request to make images; its id is also its RQ job id."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=GenerationStatus.QUEUED, index=True)
    prompt: Mapped[str] = mapped_column(Text)
    # The text the model saw: the prompt with the LoRAs' trigger words and the style's modifiers (set when it runs)
    model_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    # a style's name, or several joined by "," (A1111's styles list, applied in order: webapp/prompting/styles.py)
    style: Mapped[str] = mapped_column(String(STYLE_MAX), default="none")
    model: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    guidance: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(BigInteger)
    num_images: Mapped[int] = mapped_column(Integer, default=1)
    init_image_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    strength: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default=Source.TEXT, server_default=Source.TEXT)
    # No foreign key: images already point at generations, and a cycle between the two tables would break
    # ordered CREATE/DROP; a deleted parent simply shows as gone.
    parent_image_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    upload_id: Mapped[str | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="SET NULL", name="fk_generations_upload_id_uploads"), nullable=True, index=True)
    resize_mode: Mapped[str | None] = mapped_column(String(8), nullable=True)  # "crop" (fill) or "fit"
    timelapse: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    upscale_factor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    upscaler: Mapped[str | None] = mapped_column(String(64), nullable=True)
    loras: Mapped[list | None] = mapped_column(JSON, nullable=True)  # up to 3 [name, scale] pairs from the catalog
    # Control images (webapp/controls.py): [{"name", "scale", "preprocessor", "image_key"}], the stored control
    # image preprocessed at the generation's size
    controls: Mapped[list | None] = mapped_column(JSON, nullable=True)
    precision: Mapped[str | None] = mapped_column(String(8), nullable=True)  # fp32/bf16/fp16 the worker computed in
    # The sampler chosen by name (models/samplers.py, "DPM++ 2M Karras"); None: the model's catalog scheduler
    scheduler: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User] = relationship(back_populates="generations")
    upload: Mapped[Upload | None] = relationship()
    images: Mapped[list[Image]] = relationship(
        back_populates="generation", order_by="Image.index", cascade="all, delete-orphan", passive_deletes=True
    )
    edit: Mapped[GenerationEdit | None] = relationship(
        back_populates="generation", cascade="all, delete-orphan", passive_deletes=True, uselist=False)

    @property
    def is_final(self) -> bool:
        """True once the status can no longer change."""
        return GenerationStatus(self.status).is_final

    @property
    def total_steps(self) -> int:
        """Steps the worker really runs: image-to-image denoises only ``int(steps * strength)`` of them."""
        if self.source == Source.UPSCALE:
            return 1
        if self.init_image_key and self.strength is not None:
            return denoising_steps(self.steps, self.strength)
        if self.edit is not None and self.edit.kind == "hires":  # both passes, one progress bar
            return self.steps + denoising_steps(self.edit.hr_steps or self.steps, self.edit.hr_strength or 0)
        return self.steps


MAX_IMAGES_PER_REQUEST = 4  # whatever the model allows (generation_rules.IMAGES_MAX)
DEFAULT_STRENGTH = 0.6  # how far image-to-image moves from the starting image when nobody says


def denoising_steps(steps: int, strength: float) -> int:
    """What diffusers' image-to-image runs for ``steps`` at ``strength`` (it may be 0: the form refuses that)."""
    return min(int(steps * strength), steps)


add_prompt_index(Generation.__table__)  # the full-text index on prompts (FTS5 or GIN)


class Image(db.Model):
    """One picture a generation made, stored under keys made of ids."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer, default=0)
    storage_key: Mapped[str] = mapped_column(String(255))
    thumbnail_key: Mapped[str] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_starred: Mapped[bool] = mapped_column(Boolean, default=False)
    timelapse_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Signed into every emailed result link; bumped on hide and on "revoke links", so older links die for good.
    link_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Held by the safety check (webapp/safety.py) until an admin or the owner's group manager releases it:
    # blurred for its owner, not publishable, no links. The reason and the detector's [label, score] pairs stay.
    is_held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"), index=True)
    held_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    safety_labels: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # Bytes of the image's stored files (PNG, thumbnail, timelapse), counted against its groups' storage quotas;
    # None for pictures stored before sizes were recorded.
    file_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    generation: Mapped[Generation] = relationship(back_populates="images")
    user: Mapped[User] = relationship()

    @property
    def prompt(self) -> str:
        """The prompt this picture was made from: its wildcard picks filled in, else its generation's prompt."""
        picks = getattr(self.generation, "prompt_picks", None)
        if picks is not None and 0 <= self.index < len(picks.prompts):
            return picks.prompts[self.index]
        return self.generation.prompt

    @property
    def file_keys(self) -> tuple[str, ...]:
        """Every stored file of this image: the PNG, the thumbnail and, when made, the timelapse."""
        return tuple(key for key in (self.storage_key, self.thumbnail_key, self.timelapse_key) if key)


class GenerationEdit(db.Model):
    """How a generation edits its starting image (inpainting, outpainting: the mask and its settings), or makes its
    picture in two passes (a hires fix).

    The mask is a PNG at the generation's size (white = repaint) stored with the generation's files
    (``users/<user>/<generation>/mask.png``), so it goes when the generation goes.
    """

    __tablename__ = "generation_edits"

    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "inpaint", "outpaint" or "hires"
    mask_key: Mapped[str | None] = mapped_column(String(255), nullable=True)  # None for a hires fix
    mask_blur: Mapped[int] = mapped_column(Integer, default=4)
    inpaint_area: Mapped[str] = mapped_column(String(8), default="whole")  # "whole" or "masked" (cropped, padded)
    padding: Mapped[int] = mapped_column(Integer, default=32)  # around the masked area, with inpaint_area "masked"
    fill: Mapped[str] = mapped_column(String(16), default="original")  # what the masked area starts from
    # outpainting: pixels added on each side of the original picture (before scaling to the model's size)
    grow: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # hires fix: made at 1/hr_scale of the generation's size, enlarged by hr_upscaler, then hr_steps of
    # image-to-image at hr_strength at the full size (jobs/editing.py), one progress bar over both passes
    hr_scale: Mapped[float | None] = mapped_column(Float, nullable=True)
    hr_upscaler: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hr_strength: Mapped[float | None] = mapped_column(Float, nullable=True)
    hr_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)

    generation: Mapped[Generation] = relationship(back_populates="edit")


class Upload(db.Model):
    """A starting image a person uploaded, decoded and re-encoded as PNG (never the bytes as sent)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    storage_key: Mapped[str] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    file_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the stored PNG (storage quotas)
    # Held by the safety check when it was uploaded: every picture made from it is held too (webapp/safety.py).
    is_held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    held_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    safety_labels: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Collection(db.Model):
    """A named set of a person's images; private until shared by a signed link."""

    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    is_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Signed into the public link; bumped on revoke, so every link made before stops working.
    link_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship()


class CollectionImage(db.Model):
    """One image in one collection (an image may be in several)."""

    __tablename__ = "collection_images"

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Report(db.Model):
    """A signed-in user's complaint about a public image."""

    __tablename__ = "reports"
    # One open report per person per image, kept by the database so two requests at once cannot both file one.
    __table_args__ = (Index("uq_reports_open_per_reporter", "image_id", "reporter_id", unique=True,
                            sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    image: Mapped[Image] = relationship()
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])


class AuditLog(db.Model):
    """One admin action: who did what to which target, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    admin: Mapped[User | None] = relationship()


class ApiToken(db.Model):
    """A personal API token: it acts as its owner. Only a hash of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # The token's non-secret part, shown in lists and used to find the row; the secret is only hashed.
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The model AUTOMATIC1111 clients chose with ``POST /sdapi/v1/options``: this token's, never the site's.
    default_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User] = relationship()


class BlockedTerm(db.Model):
    """A word or phrase that admins refuse in prompts (whole words, case-insensitive)."""

    __tablename__ = "blocked_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(100), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Group(db.Model):
    """A class or a team: its members and managers, and settings that replace the site's for them.

    A setting left empty (None) is the site's. ``models``, ``loras`` and ``upscalers`` are lists of catalog
    names (None: every one the site offers). See webapp/groups/limits.py for how several groups combine.
    """

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    daily_images: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_active: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_queued: Mapped[int | None] = mapped_column(Integer, nullable=True)
    queue_weight: Mapped[float | None] = mapped_column(Float, nullable=True)
    models: Mapped[list | None] = mapped_column(JSON, nullable=True)
    loras: Mapped[list | None] = mapped_column(JSON, nullable=True)
    upscalers: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # Bytes the members' pictures and uploads may keep, all together (None: no limit)
    storage_quota: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The prompt's text classifier for members: on, off, or None for the site's PROMPT_CLASSIFIER
    prompt_classifier: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    members: Mapped[list[GroupMember]] = relationship(back_populates="group", cascade="all, delete-orphan",
                                                      passive_deletes=True)


class GroupMember(db.Model):
    """One person in one group; a manager (a teacher) sees the group's members, usage and pictures."""

    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    is_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    group: Mapped[Group] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class UserIdentity(db.Model):
    """An account at an OpenID Connect provider that signs a person in: the issuer's subject, never the email."""

    __tablename__ = "user_identities"
    __table_args__ = (Index("uq_user_identities_subject", "provider", "subject", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))  # the OIDC_PROVIDERS name
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class BoardAccess(db.Model):
    """A collection shared as a team board: one person's or one group's role on it (``editor`` or ``viewer``)."""

    __tablename__ = "board_access"
    __table_args__ = (
        Index("uq_board_access_user", "collection_id", "user_id", unique=True),
        Index("uq_board_access_group", "collection_id", "group_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User | None] = relationship()
    group: Mapped[Group | None] = relationship()


class Wildcard(db.Model):
    """A named list that ``__name__`` in a prompt picks from: the site's (no owner; admins keep them) or one
    person's own, which wins for them over a site list of the same name."""

    __tablename__ = "wildcards"
    __table_args__ = (Index("uq_wildcards_owner_name", "user_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(64))
    values: Mapped[list] = mapped_column(JSON)  # the entries, in order
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class GenerationPrompts(db.Model):
    """The prompt each image of a generation was made from, when wildcards or variants made them differ
    (picked when it was submitted, so a list edited later changes nothing)."""

    __tablename__ = "generation_prompts"

    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    prompts: Mapped[list] = mapped_column(JSON)  # one per image, in order
    variants: Mapped[str] = mapped_column(String(8), default="random")  # "random" (by seed) or "all"

    # loaded with its generation (one LEFT JOIN), so a gallery page asks no extra query per picture
    generation: Mapped[Generation] = relationship(backref=backref(
        "prompt_picks", uselist=False, cascade="all, delete-orphan", passive_deletes=True, lazy="joined"))


add_picks_index(GenerationPrompts.__table__)  # gallery search finds the words each image's prompt was made of


class Grid(db.Model):
    """An X/Y/Z comparison: its cells are ordinary generations; its picture is one more, made when they end."""

    __tablename__ = "grids"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    settings: Mapped[dict] = mapped_column(JSON)  # the axes ([{"type", "values"}]) and the base request
    # the grid picture's generation, set once when every cell has ended (no foreign key: it is made later)
    generation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    cells: Mapped[list[GridCell]] = relationship(back_populates="grid", order_by="GridCell.position",
                                                 cascade="all, delete-orphan", passive_deletes=True)


class GridCell(db.Model):
    """One cell of a grid: a generation, at its place (``position`` = x + y·X + z·X·Y)."""

    __tablename__ = "grid_cells"

    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)

    grid: Mapped[Grid] = relationship(back_populates="cells")
    generation: Mapped[Generation] = relationship()


class SavedStyle(db.Model):
    """A style as data, beside the bundled presets (``webapp.styles``): the site's (no owner; admins keep them),
    or one person's own, which they may publish so everyone can apply it by name."""

    __tablename__ = "saved_styles"
    __table_args__ = (Index("uq_saved_styles_owner_name", "user_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(32))  # what ``style`` names, in the studio and the APIs
    label: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(Text)  # the prompt, with {prompt} where the person's words go
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(64), nullable=True)  # suggested, with its steps and guidance
    steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    guidance: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)  # a person's, published to the site
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
