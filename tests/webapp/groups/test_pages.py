"""The admin's group pages (admins only, CSRF, audited) and a manager's view, which stops at their group."""
from __future__ import annotations

import re

import pytest

from tests.support import audit_entries, csrf_token, post, sign_in
from webapp.extensions import db
from webapp.tables import Group, Image

pytestmark = pytest.mark.db


def group_row(app, name: str) -> Group | None:
    with app.app_context():
        group = db.session.scalar(db.select(Group).where(Group.name == name))
        if group is not None:
            db.session.expunge(group)
        return group


def test_admins_create_and_fill_a_group_through_the_pages(app, make_user):
    make_user("root@example.com", is_admin=True)
    ada = make_user("ada@example.com")
    admin = sign_in(app, "root@example.com")
    assert "Groups" in admin.get("/admin/").get_data(as_text=True)
    bad = post(admin, "/admin/groups", "/admin/groups", name="class-a", daily_images="3", models="no-such-model")
    assert bad.status_code == 400 and "There is no model no-such-model" in bad.get_data(as_text=True)
    bad = post(admin, "/admin/groups", "/admin/groups", name="Class A!", daily_images="3")
    assert bad.status_code == 400 and "A group&#39;s name is 1 to 64" in bad.get_data(as_text=True)
    assert group_row(app, "class-a") is None
    created = post(admin, "/admin/groups", "/admin/groups", name="class-a", daily_images="3", models="easel-tiny")
    assert created.status_code == 303
    group = group_row(app, "class-a")
    assert (group.daily_images, group.models, group.max_active) == (3, ["easel-tiny"], None)
    page = f"/admin/groups/{group.id}"
    assert post(admin, f"{page}/members", page, email="nobody@example.com").status_code == 400
    assert post(admin, f"{page}/members", page, email="ada@example.com").status_code == 303
    assert "ada@example.com" in admin.get(page).get_data(as_text=True)
    assert post(admin, page, page, daily_images="-1").status_code == 400
    assert post(admin, page, page, storage_quota="lots").status_code == 400
    assert post(admin, page, page, daily_images="5", models="", storage_quota="2GB",
                prompt_classifier="on").status_code == 303
    group = group_row(app, "class-a")
    assert (group.daily_images, group.models, group.storage_quota, group.prompt_classifier) == (5, None, 2 * 10**9, True)
    assert 'value="2GB"' in admin.get(page).get_data(as_text=True)
    assert post(admin, f"{page}/members/{ada}/remove", page).status_code == 303
    assert 'class="member-email">ada@example.com' not in admin.get(page).get_data(as_text=True)
    assert post(admin, f"{page}/delete", page).status_code == 303 and group_row(app, "class-a") is None
    actions = [action for action, *_ in audit_entries(app) if action.startswith("group.")]
    assert actions == ["group.create", "group.add", "group.update", "group.remove", "group.delete"]


def test_the_admin_pages_are_404_to_everyone_else_and_need_csrf(app, client, make_user, runner):
    make_user("ada@example.com")
    make_user("root@example.com", is_admin=True)
    runner.invoke(args=["groups", "create", "class-a"])
    group = group_row(app, "class-a")
    person = sign_in(app, "ada@example.com")
    for path in ("/admin/groups", f"/admin/groups/{group.id}"):
        assert person.get(path).status_code == 404 and client.get(path).status_code == 404
    token = csrf_token(person, "/auth/account")
    assert person.post(f"/admin/groups/{group.id}/delete", data={"csrf_token": token}).status_code == 404
    admin = sign_in(app, "root@example.com")
    assert admin.post(f"/admin/groups/{group.id}/delete").status_code == 400  # no CSRF token
    assert group_row(app, "class-a") is not None


@pytest.fixture
def school(app, runner, make_user, make_image):
    """class-a (teacher manages; ada in it) and class-b (bo in it), each member with a picture."""
    ids = {email.split("@")[0]: make_user(email) for email in
           ("teacher@example.com", "ada@example.com", "bo@example.com")}
    for args in (["create", "class-a", "--daily-images", "3"], ["create", "class-b"],
                 ["add", "class-a", "teacher@example.com", "--manager"], ["add", "class-a", "ada@example.com"],
                 ["add", "class-b", "bo@example.com"]):
        assert runner.invoke(args=["groups", *args]).exit_code == 0
    ids["ada_image"] = make_image(ids["ada"], prompt="ada's lighthouse", is_public=True)
    ids["bo_image"] = make_image(ids["bo"], prompt="bo's windmill", is_public=True)
    return ids


def test_a_manager_sees_their_groups_members_usage_and_pictures_only(app, school):
    teacher = sign_in(app, "teacher@example.com")
    home = teacher.get("/").get_data(as_text=True)
    assert 'id="my-groups"' in home
    assert teacher.get("/groups/").headers["Location"].endswith("/groups/class-a")
    page = teacher.get("/groups/class-a").get_data(as_text=True)
    assert "ada@example.com" in page and "ada&#39;s lighthouse" in page
    assert "bo@example.com" not in page and "windmill" not in page
    usage = re.search(r'ada@example.com</td><td>member</td>\s*<td class="images-today">(\d+)</td>', page)
    assert usage and usage.group(1) == "1"
    with teacher.get(f"/groups/class-a/images/{school['ada_image']}/thumbnail") as thumbnail:
        assert thumbnail.status_code == 200 and thumbnail.content_type == "image/webp"
    assert teacher.get(f"/groups/class-a/images/{school['bo_image']}/thumbnail").status_code == 404
    assert teacher.get("/groups/class-b").status_code == 404
    assert teacher.get("/groups/no-such").status_code == 404


def test_members_and_strangers_get_404(app, client, school):
    ada = sign_in(app, "ada@example.com")
    assert 'id="my-groups"' not in ada.get("/").get_data(as_text=True)
    for person in (ada, sign_in(app, "bo@example.com")):
        assert person.get("/groups/").status_code == 404
        assert person.get("/groups/class-a").status_code == 404
        assert person.get(f"/groups/class-a/images/{school['ada_image']}/thumbnail").status_code == 404
    assert client.get("/groups/class-a").status_code in (302, 404)  # signed out: to the sign-in page


def test_a_manager_hides_a_members_picture_audited(app, school):
    teacher = sign_in(app, "teacher@example.com")
    hide = f"/groups/class-a/images/{school['ada_image']}/hide"
    assert teacher.post(hide).status_code == 400  # no CSRF token
    other = f"/groups/class-a/images/{school['bo_image']}/hide"
    assert post(teacher, other, "/groups/class-a").status_code == 404
    assert post(sign_in(app, "bo@example.com"), hide, "/auth/account").status_code == 404
    with app.app_context():
        assert not db.session.get(Image, school["ada_image"]).is_hidden
    assert post(teacher, hide, "/groups/class-a").status_code == 303
    with app.app_context():
        assert db.session.get(Image, school["ada_image"]).is_hidden
        assert not db.session.get(Image, school["bo_image"]).is_hidden
    assert audit_entries(app, "image.hide") == [("image.hide", "image", school["ada_image"], school["teacher"])]
    assert school["ada_image"] not in sign_in(app, "bo@example.com").get("/explore").get_data(as_text=True)
