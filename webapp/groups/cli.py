"""``flask groups``: create a group, add and remove people, show it (scripts and tests use these)."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..tables import GroupMember, User
from .limits import images_today
from .storage import human_size, kept_by_members
from .store import (
    GroupRefused,
    add_member,
    create_group,
    describe,
    find_group,
    remove_member,
    role,
    update_group,
)

groups_cli = AppGroup("groups", help="Manage groups: classes and teams with their own models and limits.")


def _names(raw: str | None) -> list[str] | None:
    return None if raw is None else [name for name in raw.split(",") if name.strip()]


def _group_or_fail(name: str):
    group = find_group(name)
    if group is None:
        raise click.ClickException(f"no group {name}")
    return group


def _user_or_fail(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
    if user is None:
        raise click.ClickException(f"no account {email}")
    return user


def _settings_options(command):
    """The options of ``create`` and ``set``: a group's settings."""
    options = [
        click.option("--daily-images", type=int, help="Images a member may ask for per day (from 00:00 UTC)."),
        click.option("--max-active", type=int, help="Generations a member may have waiting or running at once."),
        click.option("--max-queued", type=int, help="Generations a member may have waiting in the queue."),
        click.option("--models", help="Comma-separated catalog names of the models members may use (default: all)."),
        click.option("--loras", help="Comma-separated LoRA names members may use (default: all)."),
        click.option("--upscalers", help="Comma-separated upscaler names members may use (default: all)."),
        click.option("--weight", type=float, help="The members' share of the queue (2: twice a default person's)."),
        click.option("--storage-quota", help="Bytes the members' pictures may keep together: 500MB, 2GB "
                                             "('none': no limit)."),
        click.option("--prompt-classifier", type=click.Choice(["on", "off", "site"]),
                     help="The prompt's text classifier for members ('site': PROMPT_CLASSIFIER)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(given: dict) -> dict:
    """The options given (left out: not in the result) as ``webapp.groups.store`` settings."""
    names = {"weight": "queue_weight"}
    settings = {names.get(key, key): value for key, value in given.items() if value is not None}
    for kind in ("models", "loras", "upscalers"):
        if kind in settings:
            settings[kind] = _names(settings[kind])
    if "storage_quota" in settings:
        settings["storage_quota"] = None if settings["storage_quota"].lower() == "none" else settings["storage_quota"]
    if "prompt_classifier" in settings:
        settings["prompt_classifier"] = {"on": True, "off": False, "site": None}[settings["prompt_classifier"]]
    return settings


@groups_cli.command("create")
@click.argument("name")
@_settings_options
def create(name: str, **given) -> None:
    """Create the group NAME; a setting left out is the site's."""
    try:
        group = create_group(name, _settings(given))
    except GroupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created group {group.name}: {describe(group)}")


@groups_cli.command("set")
@click.argument("name")
@_settings_options
def set_(name: str, **given) -> None:
    """Change the group NAME's settings; a setting left out stays as it is."""
    group = _group_or_fail(name)
    try:
        copied = update_group(group, _settings(given))
    except GroupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{group.name}: {describe(group)}")
    if not copied:
        click.echo("Redis did not answer: the queue gets the weight when the chores restore it.", err=True)


@groups_cli.command("add")
@click.argument("name")
@click.argument("email")
@click.option("--manager", is_flag=True, help="Make the person a manager: they see the group's members, "
                                               "usage and pictures, and can hide a member's picture.")
def add(name: str, email: str, manager: bool) -> None:
    """Add the person with EMAIL to the group NAME (or change their role)."""
    group, user = _group_or_fail(name), _user_or_fail(email)
    change = add_member(group, user, manager)
    click.echo(f"{user.email} is a {role(manager)} of {group.name}." if change.changed
               else f"{user.email} already is a {role(manager)} of {group.name}.")
    if not change.copied:
        click.echo("Redis did not answer: the queue gets the weight when the chores restore it.", err=True)


@groups_cli.command("remove")
@click.argument("name")
@click.argument("email")
def remove(name: str, email: str) -> None:
    """Take the person with EMAIL out of the group NAME."""
    group, user = _group_or_fail(name), _user_or_fail(email)
    change = remove_member(group, user)
    click.echo(f"{user.email} left {group.name}." if change.changed else f"{user.email} is not in {group.name}.")
    if not change.copied:
        click.echo("Redis did not answer: the queue gets the weight when the chores restore it.", err=True)


@groups_cli.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print the group NAME's settings, and its people with their images today."""
    group = _group_or_fail(name)
    click.echo(f"{group.name}: {describe(group)}")
    members = db.session.execute(select(User, GroupMember.is_manager).join(GroupMember)
                                 .where(GroupMember.group_id == group.id).order_by(User.email)).all()
    if not members:
        click.echo("no members")
    kept = kept_by_members(group)
    if group.storage_quota is not None:
        click.echo(f"storage: {human_size(sum(kept.values()))} kept of {human_size(group.storage_quota)}")
    for user, manager in members:
        click.echo(f"  {user.email}  {role(manager)}  {images_today(user.id)} image(s) today  "
                   f"{human_size(kept.get(user.id, 0))} kept")
