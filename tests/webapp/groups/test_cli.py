"""``flask groups`` through Flask's CLI runner, and once through the real ``flask`` command on a migrated database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.extensions import db
from webapp.tables import Group

FLASK = str(Path(sys.executable).with_name("flask"))


def test_create_add_show_remove(app, runner, make_user):
    make_user("ada@example.com")
    created = runner.invoke(args=["groups", "create", "class-a", "--daily-images", "3", "--max-active", "2",
                                  "--models", "easel-tiny", "--weight", "2"])
    assert created.exit_code == 0, created.output
    assert "daily_images=3 max_active=2 max_queued=site queue_weight=2 models=easel-tiny" in created.output
    assert runner.invoke(args=["groups", "add", "class-a", "ADA@example.com", "--manager"]).output == \
        "ada@example.com is a manager of class-a.\n"
    shown = runner.invoke(args=["groups", "show", "class-a"]).output
    assert "ada@example.com  manager  0 image(s) today" in shown
    assert runner.invoke(args=["groups", "add", "class-a", "ada@example.com"]).output == \
        "ada@example.com is a member of class-a.\n"  # the role changes
    assert runner.invoke(args=["groups", "remove", "class-a", "ada@example.com"]).output == "ada@example.com left class-a.\n"
    assert "no members" in runner.invoke(args=["groups", "show", "class-a"]).output


@pytest.mark.parametrize(("args", "message"), [
    (["create", "Class A"], "A group's name is 1 to 64"),
    (["create", "class-b", "--models", "easel-tiny,nope"], "There is no model nope in the catalog"),
    (["create", "class-b", "--daily-images", "-1"], "daily_images is a whole number from 0"),
    (["create", "class-b", "--weight", "50"], "A queue weight is a number from 0.1 to 10"),
    (["create", "class-b", "--loras", "nope"], "There is no LoRA nope"),
    (["create", "class-a"], "There is already a group named class-a"),
    (["add", "no-such", "ada@example.com"], "no group no-such"),
    (["add", "class-a", "nobody@example.com"], "no account nobody@example.com"),
    (["show", "no-such"], "no group no-such"),
])
def test_bad_input_is_refused_with_nothing_changed(app, runner, make_user, args, message):
    make_user("ada@example.com")
    runner.invoke(args=["groups", "create", "class-a"])
    result = runner.invoke(args=["groups", *args])
    assert result.exit_code == 1 and message in result.output, result.output
    with app.app_context():
        assert [group.name for group in db.session.scalars(db.select(Group))] == ["class-a"]


def test_the_real_flask_command_on_a_migrated_database(app_env, tmp_path):
    env = {**os.environ, **app_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "EASEL_ADMIN_PASSWORD": "a long admin password"}

    def flask(*args: str) -> str:
        done = subprocess.run([FLASK, "--app", "wsgi:app", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    flask("db", "upgrade")
    flask("create-admin", "teacher@example.com")
    assert "Created group class-a: daily_images=3" in flask("groups", "create", "class-a", "--daily-images", "3",
                                                            "--models", "easel-tiny")
    flask("groups", "add", "class-a", "teacher@example.com", "--manager")
    assert "teacher@example.com  manager  0 image(s) today" in flask("groups", "show", "class-a")
