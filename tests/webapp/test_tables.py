"""The generation state machine: only the moves in ``TRANSITIONS`` ever happen."""
from __future__ import annotations

import itertools

import pytest

from tests.support import add_generation
from webapp.extensions import db
from webapp.tables import TRANSITIONS, Generation, GenerationStatus, move_generation

PAIRS = list(itertools.product(GenerationStatus, GenerationStatus))


def test_the_table_is_the_documented_one() -> None:
    moves = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert moves == {("queued", "running"), ("queued", "canceled"), ("queued", "failed"),
                     ("running", "succeeded"), ("running", "failed"), ("running", "canceled"), ("running", "queued"),
                     ("failed", "queued")}
    assert all(not TRANSITIONS[s] for s in (GenerationStatus.SUCCEEDED, GenerationStatus.CANCELED))


@pytest.mark.db
def test_every_pair_moves_only_when_the_table_allows_it(app, make_user) -> None:
    user = make_user()
    for source, target in PAIRS:
        generation_id = add_generation(app, user, status=source)
        with app.app_context():
            moved = move_generation(generation_id, target, error="why")
            status = db.session.get(Generation, generation_id).status
        allowed = target in TRANSITIONS[source]
        assert moved is allowed, (source, target)
        assert status == (target if allowed else source), (source, target)


@pytest.mark.db
def test_only_from_narrows_and_never_widens(app, make_user) -> None:
    generation_id = add_generation(app, make_user(), status=GenerationStatus.RUNNING)
    with app.app_context():
        assert not move_generation(generation_id, GenerationStatus.CANCELED, (GenerationStatus.QUEUED,))
        with pytest.raises(ValueError, match="succeeded → canceled"):
            move_generation(generation_id, GenerationStatus.CANCELED, (GenerationStatus.SUCCEEDED,))
        assert move_generation(generation_id, GenerationStatus.CANCELED, (GenerationStatus.RUNNING,))
        assert db.session.get(Generation, generation_id).status == GenerationStatus.CANCELED
