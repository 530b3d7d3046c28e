"""``flask`` commands for operators."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from .auth.passwords import password_problem
from .cleanup import delete_expired_images
from .config import admin_password_from
from .extensions import db
from .groups.cli import groups_cli
from .queue_weights import WEIGHT_MAX, WEIGHT_MIN, set_queue_weight
from .tables import User


@click.command("create-admin")
@click.argument("email")
@click.option("--password-env", default="EASEL_ADMIN_PASSWORD", show_default=True,
              help="Read the password from this environment variable instead of prompting.")
@with_appcontext
def create_admin(email: str, password_env: str) -> None:
    """Create an admin account, or make an existing account an admin."""
    email = User.normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("give a valid email address", param_hint="EMAIL")
    user = db.session.scalar(select(User).where(User.email == email))
    password = admin_password_from(password_env)
    if password is None and (user is None or click.confirm("Set a new password?", default=False)):
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, email) if password is not None else None
    if problem:
        raise click.ClickException(f"that password is refused: {problem}")
    if user is None:
        user = User(email=email)
        db.session.add(user)
    if password is not None:
        user.set_password(password)
    user.is_admin = True
    db.session.commit()
    click.echo(f"{email} is an admin.")


@click.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
@with_appcontext
def cleanup(dry_run: bool) -> None:
    """Delete images past RETENTION_DAYS (unless starred), orphan files and stalled generations."""
    for line in delete_expired_images(dry_run=dry_run).lines():
        click.echo(line)


@click.command("queue-weight")
@click.argument("email")
@click.argument("weight", type=click.FloatRange(min=WEIGHT_MIN, max=WEIGHT_MAX))
@with_appcontext
def queue_weight(email: str, weight: float) -> None:
    """Give a person a larger share of the generation queue (2: twice everyone else's; 1: the default)."""
    user = db.session.scalar(select(User).where(User.email == User.normalize_email(email)))
    if user is None:
        raise click.ClickException(f"no account {email}")
    change = set_queue_weight(user, weight)
    click.echo(f"{user.email} now has queue weight {user.queue_weight:g}.")
    if not change.copied:
        click.echo("Redis did not answer: the queue gets the weight when the chores restore it.", err=True)


models_cli = AppGroup("models", help="Manage the model catalog.")


@models_cli.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Catalog name for the model (lower case, digits, '.', '_', '-').")
@click.option("--convert", is_flag=True, help="Save a single file as a diffusers folder under models/NAME.")
@click.option("--config", "config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A single file's base: a local diffusers folder of the same architecture.")
@click.option("--into", "models_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where --convert writes the folder (default models/).")
def models_add(path: Path, name: str, convert: bool, config_dir: Path | None, models_dir: Path | None) -> None:
    """Check a diffusers folder or .safetensors file, detect its kind and append its catalog entry."""
    from models.catalog import ModelError
    from models.manage import add_model

    catalog_path = current_app.config.get("EASEL_CATALOG") or None
    try:
        added = add_model(path, name, catalog_path=catalog_path, convert=convert, config=config_dir,
                          models_dir=models_dir)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added {added.name} ({added.kind}, {added.path}) to the catalog; restart the web and workers:"
               f"{added.table}")


@models_cli.command("optimize")
@click.argument("name")
def models_optimize(name: str) -> None:
    """Convert a model's UNet to OpenVINO once, for CPU workers (EASEL_OPENVINO; docs/precision.md)."""
    from models.catalog import ModelError, get_entry
    from models.openvino_unet import OptimizeError, optimize

    catalog_path = current_app.config.get("EASEL_CATALOG") or None
    try:
        ir, seconds = optimize(get_entry(name, catalog_path=catalog_path), current_app.config["INSTANCE_DIR"])
    except (ModelError, OptimizeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Converted {name}'s UNet to OpenVINO in {seconds:.1f} s: {ir}; CPU workers use it after a restart "
               "(EASEL_OPENVINO, on by default).")


backup_cli = AppGroup("backup", help="Back up the site into one archive, check one, restore one.")


def _backup_call(action) -> None:
    """Run a backup action; its refusal becomes a clean error (exit status 1), its report is printed."""
    from .backup import BackupError

    try:
        report = action()
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report.lines:
        click.echo(line)


@backup_cli.command("create")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_create(path: Path) -> None:
    """Write PATH: the database, every stored file, the queue weights and a manifest (safe while the site runs)."""
    from . import backup

    _backup_call(lambda: backup.create(path, echo=click.echo))
    click.echo(f"Backup written to {path}.")


@backup_cli.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_verify(path: Path) -> None:
    """Check every checksum and the schema revision of PATH without restoring anything."""
    from . import backup

    _backup_call(lambda: backup.verify(path))
    click.echo(f"{path} is intact.")


@backup_cli.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a site that has accounts or generations already.")
@with_appcontext
def backup_restore(path: Path, force: bool) -> None:
    """Restore PATH into this (empty) site, then run the migrations forward; prints what it restored."""
    from . import backup

    _backup_call(lambda: backup.restore(path, force=force, echo=click.echo))
    click.echo(f"Restored from {path}.")


def register(app: Flask) -> None:
    """Add the commands to ``app.cli``."""
    app.cli.add_command(create_admin)
    app.cli.add_command(cleanup)
    app.cli.add_command(queue_weight)
    app.cli.add_command(models_cli)
    app.cli.add_command(groups_cli)
    app.cli.add_command(backup_cli)
