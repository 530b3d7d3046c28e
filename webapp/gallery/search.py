"""Finding my images: prompt words, model, dates, starred, published; newest or oldest first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_wtf import FlaskForm
from sqlalchemy import Select, select
from wtforms import DateField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from ..extensions import db
from ..prompt_search import prompt_filter
from ..tables import Generation, Image

YES_NO_ANY = [SelectChoice("", "Any"), SelectChoice("1", "Yes"), SelectChoice("0", "No")]
SORTS = {"newest": "Newest first", "oldest": "Oldest first"}


@dataclass(frozen=True)
class GalleryFilters:
    """What narrows a gallery page; the empty default shows everything, newest first."""

    words: str = ""
    model: str = ""
    since: date | None = None
    until: date | None = None
    starred: bool | None = None
    published: bool | None = None
    sort: str = "newest"


class GalleryFilterForm(FlaskForm):
    """The gallery's GET form; its field names are the query string of ``GET /gallery``."""

    class Meta:
        csrf = False

    q = SearchField("Search prompts", validators=[Optional(), Length(max=200)])
    model = SelectField("Model", default="", validate_choice=False)
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])
    starred = SelectField("Starred", default="", choices=YES_NO_ANY)
    published = SelectField("Published", default="", choices=YES_NO_ANY)
    sort = SelectField("Sort", default="newest", choices=[SelectChoice(k, v) for k, v in SORTS.items()])

    def filters(self) -> GalleryFilters:
        """The filters the form holds; a field that does not validate counts as not set."""
        self.validate()
        answer = {"1": True, "0": False}

        def good(field):
            return None if field.errors else field.data

        return GalleryFilters(words=good(self.q) or "", model=self.model.data or "", since=good(self.since),
                              until=good(self.until), starred=answer.get(good(self.starred) or ""),
                              published=answer.get(good(self.published) or ""),
                              sort=good(self.sort) if good(self.sort) in SORTS else "newest")


def models_used(user_id: int) -> list[str]:
    """The models this person has made images with, for the filter's choices."""
    return list(db.session.scalars(select(Generation.model).where(Generation.user_id == user_id)
                                   .distinct().order_by(Generation.model)))


def gallery_query(user_id: int, filters: GalleryFilters) -> Select:
    """This person's images that pass ``filters``, in the chosen order."""
    query = select(Image).where(Image.user_id == user_id)
    words = prompt_filter(filters.words, db.session.get_bind().dialect.name)
    if words is not None:
        # The index answers first, and its hits are joined: left to itself, the planner may instead walk
        # every image newest first and test each prompt, seconds on a big gallery when a word is rare.
        hits = select(Generation.id).where(Generation.user_id == user_id, words).cte("prompt_hits")
        query = query.join(hits.prefix_with("MATERIALIZED"), Image.generation_id == hits.c.id)
    if filters.model:
        query = query.where(Image.generation_id.in_(
            select(Generation.id).where(Generation.user_id == user_id, Generation.model == filters.model)))
    if filters.since:
        query = query.where(Image.created_at >= datetime.combine(filters.since, time.min))
    if filters.until:  # the whole "to" day counts
        query = query.where(Image.created_at < datetime.combine(filters.until, time.min) + timedelta(days=1))
    if filters.starred is not None:
        query = query.where(Image.is_starred.is_(filters.starred))
    if filters.published is not None:
        query = query.where(Image.is_public.is_(filters.published))
    if filters.sort == "oldest":
        return query.order_by(Image.created_at.asc(), Image.index.asc(), Image.id)
    return query.order_by(Image.created_at.desc(), Image.index.asc(), Image.id)
