"""The run command's process manager: everything starts, serves, and stops on SIGTERM with nothing left."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import ROOT, free_port, wait_for


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_site(proc: subprocess.Popen, seen: set[int], interrupt: bool = True) -> None:
    """End a ``make run`` site: Ctrl-C (SIGINT to its process group) and every process it started gone within
    20 s when ``interrupt``; then, whatever happened, SIGKILL to anything still there."""
    try:
        if interrupt:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
            proc.wait(timeout=60)
            wait_for(lambda: not any(alive(pid) for pid in seen), timeout=20, message="every process to stop")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_run_serves_and_stops_cleanly(tmp_path):
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "MEDIA_DIR"}}
    env.update(EASEL_INSTANCE_DIR=str(tmp_path / "instance"), PORT=str(port), EASEL_REDIS_PORT=str(redis_port),
               EASEL_ENV="development", EASEL_CATALOG=str(ROOT / "tests" / "catalog.toml"))
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "webapp.launch"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def serving():
            try:
                return requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
            except requests.RequestException:  # not listening yet, or still booting its workers
                return proc.poll() is not None and stopped_early(tmp_path)

        wait_for(serving, timeout=90, interval=0.3, message="the site to answer")
        wait_for(lambda: "Listening on generate" in (tmp_path / "run.log").read_text(), timeout=90,
                 message="the generation worker")
        family = descendants(proc.pid)
        assert len(family) >= 5  # redis, waitress, worker, chores, cron
        assert (tmp_path / "instance" / "redis").is_dir()

        # A second copy on the same port refuses to start and says why.
        second = subprocess.run([sys.executable, "-m", "webapp.launch"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        wait_for(lambda: not any(alive(pid) for pid in family), timeout=20, message="every process to stop")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def stopped_early(tmp_path) -> bool:
    raise AssertionError("the run command stopped:\n" + (tmp_path / "run.log").read_text()[-3000:])
