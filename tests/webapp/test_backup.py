"""``flask backup``: pictures made by a real worker, backed up while the site runs, restored into a fresh site
(database built by the migrations, a new media directory) with every account, generation and file; a damaged
archive is refused by verify and restore; an archive of an older schema is brought forward. SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import POSTGRES_ADMIN_URL
from tests.support import Auth, submit_ok, wait_status


@contextmanager
def databases(backend: str, tmp_path: Path) -> Iterator:
    """A factory of new, empty databases of ``backend`` (PostgreSQL ones are dropped afterwards)."""
    made: list[str] = []

    def new(name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        import psycopg

        database = f"easel_backup_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        made.append(database)
        return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{database}"

    try:
        yield new
    finally:
        if made:
            import psycopg

            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
                for database in made:
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def site(database_url: str, media: Path, revision: str = "head", **settings):
    """A site as ``make run`` makes it: its database built by the migrations, its own media directory."""
    from flask_migrate import upgrade

    from webapp import config, create_app

    url = database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    app = create_app({**config.from_environment(), "TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                      "MEDIA_DIR": str(media), **settings})
    with app.app_context():
        upgrade(revision=revision)
    return app


def backup(app, *args: str):
    return app.test_cli_runner().invoke(args=["backup", *args])


def rows(app) -> dict:
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.tables import Generation, Image, User

    with app.app_context():
        result = {
            "users": {(u.email, u.queue_weight, u.password_hash) for u in db.session.scalars(select(User))},
            "generations": {(g.id, g.status, g.prompt, g.seed) for g in db.session.scalars(select(Generation))},
            "images": {(i.id, i.storage_key, i.thumbnail_key) for i in db.session.scalars(select(Image))},
        }
        db.session.remove()
        return result


def files(media: Path) -> dict[str, str]:
    return {str(p.relative_to(media)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in media.rglob("*") if p.is_file()}


@pytest.mark.db
def test_back_up_a_running_site_and_restore_it_into_a_fresh_one(database_backend, app_env, workers, redis_url,
                                                                tmp_path):
    from webapp.extensions import db
    from webapp.queue_weights import set_queue_weight
    from webapp.queues import FAIR_WEIGHTS
    from webapp.tables import User

    with databases(database_backend, tmp_path) as new_database:
        source_url, source_media = new_database("source"), tmp_path / "source-media"
        source = site(source_url, source_media)
        with source.app_context():
            for email in ("ada@example.com", "bob@example.com"):
                user = User(email=email)
                user.set_password("correct horse")
                db.session.add(user)
            db.session.commit()
            ada = db.session.query(User).filter_by(email="ada@example.com").one()
            set_queue_weight(ada, 2.5)
            ada_id = ada.id
            db.session.remove()
        workers.start(extra_env={"DATABASE_URL": source_url, "MEDIA_DIR": str(source_media)})
        for email, images in (("ada@example.com", 2), ("bob@example.com", 1)):
            client = source.test_client()
            Auth(client).login(email)
            generation_id = submit_ok(client, steps="2", num_images=str(images))
            assert wait_status(client, generation_id, {"succeeded", "failed"})["status"] == "succeeded"
        made, made_files = rows(source), files(source_media)
        assert len(made["images"]) == 3 and len(made_files) == 6  # a PNG and a thumbnail each

        archive = tmp_path / "easel.tar"
        result = backup(source, "create", str(archive))  # the worker and the site still run
        assert result.exit_code == 0, result.output
        assert "users: 2" in result.output and "images: 3" in result.output and "files: 6" in result.output
        result = backup(source, "verify", str(archive))
        assert result.exit_code == 0 and "is intact" in result.output, result.output
        assert backup(source, "create", str(archive)).exit_code == 1  # never overwrites an archive

        # Wipe: a new database built by the migrations, a new media directory, Redis without the weights.
        Redis.from_url(redis_url).delete(FAIR_WEIGHTS)
        target_media = tmp_path / "target-media"
        target = site(new_database("target"), target_media)
        result = backup(target, "restore", str(archive))
        assert result.exit_code == 0, result.output
        assert "users: 2" in result.output and "generations: 2" in result.output and "images: 3" in result.output
        assert rows(target) == made
        assert files(target_media) == made_files
        assert float(Redis.from_url(redis_url).hget(FAIR_WEIGHTS, str(ada_id))) == 2.5

        # The restored site serves each picture to its owner after a normal sign-in.
        for email in ("ada@example.com", "bob@example.com"):
            client = target.test_client()
            assert Auth(client).login(email).status_code == 302
            with target.app_context():
                user_id = db.session.query(User).filter_by(email=email).one().id
                db.session.remove()
            for image_id, key, _ in made["images"]:
                if key.startswith(f"users/{user_id}/"):
                    with client.get(f"/images/{image_id}/file") as response:
                        assert response.status_code == 200
                        assert hashlib.sha256(response.data).hexdigest() == made_files[key]

        # A site that has accounts is not replaced unless asked.
        result = backup(target, "restore", str(archive))
        assert result.exit_code == 1 and "--force" in result.output
        assert backup(target, "restore", "--force", str(archive)).exit_code == 0
        assert rows(target) == made

        # One byte changed in one picture: verify and restore refuse, and the empty site stays empty.
        damaged = tmp_path / "damaged.tar"
        damaged.write_bytes(archive.read_bytes())
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(".png"))
        with open(damaged, "r+b") as handle:
            handle.seek(member.offset_data + member.size // 2)
            byte = handle.read(1)
            handle.seek(-1, 1)
            handle.write(bytes([byte[0] ^ 0x01]))
        result = backup(source, "verify", str(damaged))
        assert result.exit_code == 1 and f"{member.name} does not match its checksum" in result.output
        empty_media = tmp_path / "empty-media"
        empty = site(new_database("empty"), empty_media)
        result = backup(empty, "restore", str(damaged))
        assert result.exit_code == 1 and "does not match its checksum" in result.output
        assert rows(empty) == {"users": set(), "generations": set(), "images": set()}
        assert not empty_media.exists() or files(empty_media) == {}
        for app in (source, target, empty):
            with app.app_context():
                db.engine.dispose()


@pytest.mark.db
def test_an_archive_of_an_older_schema_is_brought_forward(database_backend, app_env, tmp_path):
    from sqlalchemy import text

    from webapp.extensions import db

    with databases(database_backend, tmp_path) as new_database:
        old = site(new_database("old"), tmp_path / "old-media", revision="df9e166e7c48")  # the first schema
        with old.app_context():
            db.session.execute(text("INSERT INTO users (email, display_name, password_hash, is_admin, is_banned, "
                                    "notify_by_email, session_version, created_at) VALUES ('old@example.com', 'Old', "
                                    "'x', false, false, false, 1, CURRENT_TIMESTAMP)"))
            db.session.commit()
        archive = tmp_path / "old.tar.gz"
        assert backup(old, "create", str(archive)).exit_code == 0
        result = backup(old, "verify", str(archive))
        assert "schema revision: df9e166e7c48 (migrations will bring it to" in result.output, result.output
        target = site(new_database("new"), tmp_path / "new-media")
        result = backup(target, "restore", str(archive))
        assert result.exit_code == 0, result.output
        with target.app_context():
            assert db.session.execute(text("SELECT email, queue_weight FROM users")).all() == [("old@example.com", 1.0)]
            from webapp.backup import _known_revisions

            head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert head in _known_revisions()[1] and head != "df9e166e7c48"
        for app in (old, target):
            with app.app_context():
                db.engine.dispose()


def test_a_local_sites_archive_restores_into_an_s3_site(app_env, s3_bucket, tmp_path):
    import io

    from PIL import Image as PILImage

    from tests.support import bucket_keys
    from webapp.extensions import db
    from webapp.storage import create_storage, image_key, thumbnail_key
    from webapp.tables import Generation, Image, User

    source_media = tmp_path / "media"
    source = site(f"sqlite:///{tmp_path / 'local.db'}", source_media, STORAGE="local")
    with source.app_context():
        user = User(email="ada@example.com")
        user.set_password("correct horse")
        db.session.add(user)
        db.session.flush()
        generation = Generation(user_id=user.id, status="succeeded", prompt="a red circle", model="easel-tiny",
                                width=64, height=64, steps=4, guidance=5.0, seed=1, num_images=1)
        db.session.add(generation)
        db.session.flush()
        storage = create_storage(source.config)
        png = io.BytesIO()
        PILImage.new("RGB", (64, 64), "red").save(png, "PNG")
        key, thumb = image_key(user.id, generation.id, 0), thumbnail_key(user.id, generation.id, 0)
        storage.save(key, png.getvalue(), "image/png")
        storage.save(thumb, b"RIFF-not-really-webp", "image/webp")
        db.session.add(Image(generation_id=generation.id, user_id=user.id, index=0, storage_key=key,
                             thumbnail_key=thumb, width=64, height=64))
        db.session.commit()
        db.session.remove()
    archive = tmp_path / "local.tar.gz"
    assert backup(source, "create", str(archive)).exit_code == 0
    target = site(f"sqlite:///{tmp_path / 's3.db'}", tmp_path / "unused")  # STORAGE=s3 from the environment
    assert target.config["STORAGE"] == "s3"
    result = backup(target, "restore", str(archive))
    assert result.exit_code == 0, result.output
    prefix = s3_bucket.prefix + "/"
    assert sorted(k.removeprefix(prefix) for k in bucket_keys(s3_bucket)) == sorted([key, thumb])
    body = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=prefix + key)["Body"].read()
    assert body == png.getvalue()
    assert rows(target) == rows(source)
    # and back: the S3 site's archive restores into a local one
    again = tmp_path / "s3.tar"
    assert backup(target, "create", str(again)).exit_code == 0
    local_media = tmp_path / "media-again"
    local = site(f"sqlite:///{tmp_path / 'again.db'}", local_media, STORAGE="local")
    assert backup(local, "restore", str(again)).exit_code == 0
    assert files(local_media) == files(source_media)
    for one in (source, target, local):
        with one.app_context():
            db.engine.dispose()
