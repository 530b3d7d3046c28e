"""Lineage: an image's parent, and the children the viewer may see."""
from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.lineage import chain_from, children_of, parent_of
from webapp.tables import Image, Source, User


@pytest.mark.db
def test_parent_and_children_visible_to_the_viewer(app, make_user, make_image):
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    root = make_image(ada, is_public=True)
    own_variation = make_image(ada, generation={"source": Source.VARIATION, "parent_image_id": root})
    bob_private = make_image(bob, generation={"source": Source.IMAGE, "parent_image_id": root})
    bob_public = make_image(bob, is_public=True, generation={"source": Source.UPSCALE, "parent_image_id": root})
    bob_hidden = make_image(bob, is_public=True, is_hidden=True,
                            generation={"source": Source.IMAGE, "parent_image_id": root})
    grandchild = make_image(ada, generation={"source": Source.UPSCALE, "parent_image_id": own_variation})
    with app.app_context():
        image = db.session.get(Image, root)
        as_ada = {i.id for i in children_of(image, db.session.get(User, ada))}
        as_bob = {i.id for i in children_of(image, db.session.get(User, bob))}
        assert as_ada == {own_variation, bob_public}
        assert as_bob == {bob_private, bob_public, bob_hidden}
        assert children_of(image, None) == []
        assert parent_of(image) is None
        assert parent_of(db.session.get(Image, own_variation)).id == root
        chain = chain_from(db.session.get(Image, grandchild).generation)
        assert chain == [{"image_id": own_variation, "source": "upscale"}, {"image_id": root, "source": "variation"}]


def test_a_deleted_parent_shows_as_gone(app, make_user, make_image):
    ada = make_user("ada@example.com")
    root = make_image(ada)
    child = make_image(ada, generation={"source": Source.IMAGE, "parent_image_id": root})
    with app.app_context():
        db.session.delete(db.session.get(Image, root))
        db.session.commit()
        image = db.session.get(Image, child)
        assert parent_of(image) is None
        assert image.generation.parent_image_id == root
