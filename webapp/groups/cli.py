"""``flask groups``: create a group, add and remove people, show it (scripts and tests use these)."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..tables import GroupMember, User
from .limits import images_today
from .store import GroupRefused, add_member, create_group, describe, find_group, remove_member, role

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


@groups_cli.command("create")
@click.argument("name")
@click.option("--daily-images", type=int, help="Images a member may ask for per day (from 00:00 UTC).")
@click.option("--max-active", type=int, help="Generations a member may have waiting or running at once.")
@click.option("--max-queued", type=int, help="Generations a member may have waiting in the queue.")
@click.option("--models", help="Comma-separated catalog names of the models members may use (default: all).")
@click.option("--loras", help="Comma-separated LoRA names members may use (default: all).")
@click.option("--upscalers", help="Comma-separated upscaler names members may use (default: all).")
@click.option("--weight", type=float, help="The members' share of the queue (2: twice a default person's).")
def create(name: str, daily_images: int | None, max_active: int | None, max_queued: int | None,
           models: str | None, loras: str | None, upscalers: str | None, weight: float | None) -> None:
    """Create the group NAME; a setting left out is the site's."""
    settings = {"daily_images": daily_images, "max_active": max_active, "max_queued": max_queued,
                "queue_weight": weight, "models": _names(models), "loras": _names(loras),
                "upscalers": _names(upscalers)}
    try:
        group = create_group(name, settings)
    except GroupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created group {group.name}: {describe(group)}")


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
    for user, manager in members:
        click.echo(f"  {user.email}  {role(manager)}  {images_today(user.id)} image(s) today")
