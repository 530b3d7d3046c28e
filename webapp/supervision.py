"""supervisord for ``make run``: its configuration, written from the Procfile, and the console printer.

supervisord restarts a process that dies: at once when it had been running, after 1, 2, 3 … seconds
when it keeps dying within ``START_SECONDS`` of starting (``EASEL_RESTART_TRIES`` times, then it is
left stopped with a "gave up" line). It logs why each one died ("exited: worker (terminated by
SIGKILL; not expected)"). Each process's output reaches the console through ``python -m
webapp.supervision``, an event listener that puts the process's name in front of every line, and prints
one banner (where to open the site, how to begin) once the site answers and the generation worker waits
for work.
"""
from __future__ import annotations

import ctypes
import io
import os
import shlex
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from honcho.environ import parse_procfile

START_SECONDS = 3  # a process that dies sooner counts as a failed start and is retried with back-off
STOP_SECONDS = 10  # then SIGKILL: a generation worker finishing a long job must not hold up Ctrl-C for ever
GROUP = "easel"
PR_SET_PDEATHSIG = 1
# RQ's line when the generation worker has loaded its models and waits for jobs.
WORKER_READY = "Listening on generate"
BANNER_WAIT_SECONDS = 300  # the web must answer within this long of the worker being ready


@dataclass(frozen=True)
class Program:
    """One supervised process: its name and the shell command that runs it."""

    name: str
    command: str


def die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent process dies, so that nothing outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the supervisor's own stop still works
        pass


def read_procfile(path: Path) -> list[Program]:
    """The processes named in a Procfile, in order (honcho's parser, so both read it alike)."""
    return [Program(name, command) for name, command in parse_procfile(path.read_text()).processes.items()]


def _escape(value: str) -> str:
    """supervisord expands ``%(name)s`` in values; a literal ``%`` must be doubled."""
    return value.replace("%", "%%")


def _section(title: str, options: dict[str, object]) -> str:
    lines = [f"[{title}]"] + [f"{key} = {_escape(str(value))}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _program(argv: list[str], priority: int, restart_tries: int, directory: Path) -> dict[str, object]:
    return {
        "command": shlex.join(argv),
        "directory": directory,
        "priority": priority,
        "autostart": "true",
        "autorestart": "true",
        "startsecs": START_SECONDS,
        "startretries": restart_tries,
        # Each program gets its own process group: RQ's work horses and scheduler go with it.
        "stopasgroup": "true",
        "killasgroup": "true",
        "stopwaitsecs": STOP_SECONDS,
        "redirect_stderr": "true",
        "stdout_logfile": "NONE",
        "stdout_events_enabled": "true",  # to the console printer, with the name in front
    }


def supervisord_config(programs: list[Program], *, instance_dir: Path, root: Path, python: str,
                       restart_tries: int, redis_argv: list[str] | None = None) -> str:
    """The text of a supervisord.conf running ``programs`` (and Redis first, when given) in the foreground.

    Args:
        programs: the Procfile's processes; each runs as ``/bin/sh -c 'exec <command>'`` in ``root``.
        instance_dir: where supervisord keeps its log and pid file.
        root: the project directory.
        python: the interpreter that runs the console printer.
        restart_tries: failed starts in a row before a process is given up.
        redis_argv: the embedded Redis's command line, or None when Redis lives elsewhere.
    """
    sections = [
        _section("supervisord", {
            "nodaemon": "true",
            "logfile": instance_dir / "supervisord.log",
            "logfile_maxbytes": "1MB",
            "logfile_backups": 2,
            "pidfile": instance_dir / "supervisord.pid",
            "childlogdir": instance_dir,
            "loglevel": "info",
            # Running as root on purpose (a container) is not worth a CRIT line at every start.
            **({"user": "root"} if os.geteuid() == 0 else {}),
        }),
        _section("eventlistener:console", {
            "command": shlex.join([python, "-m", "webapp.supervision"]),
            "directory": root,
            "events": "PROCESS_LOG",
            "buffer_size": 4096,
            "priority": 0,  # first up, last down: it prints everyone's last words
            "autorestart": "true",
            "stdout_logfile": "NONE",
            "stderr_logfile": "/dev/stdout",
            "stderr_logfile_maxbytes": 0,
        }),
    ]
    if redis_argv is not None:
        sections.append(_section("program:redis", _program(redis_argv, 1, restart_tries, root)))
    for program in programs:
        argv = ["/bin/sh", "-c", f"exec {program.command}"]
        sections.append(_section(f"program:{program.name}", _program(argv, 10, restart_tries, root)))
    # One group, so Ctrl-C stops them all at once (then Redis, then the printer) rather than one by one.
    sections.append(_section(f"group:{GROUP}", {"programs": ",".join(p.name for p in programs), "priority": 10}))
    return "\n".join(sections)


def _read_event(stdin: TextIO) -> tuple[dict[str, str], str]:
    """One event in supervisord's listener protocol: a header line, then ``len`` characters of payload."""
    line = stdin.readline()
    if not line:
        raise EOFError
    return _headers(line), stdin.read(int(_headers(line)["len"]))


def _headers(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split())


def banner(url: str, mail_backend: str, mail_dir: str = "") -> str:
    """What ``make run`` shows once everything is up: the address, and the first two steps."""
    if mail_backend == "console":
        how = "the sign-up link appears on the page while no mail server is set"
    elif mail_backend == "file":
        how = f"the sign-up email is written to {mail_dir}"
    else:
        how = "the sign-up link comes by email"
    rule = "-" * 78
    return "\n".join(["", rule, f"  Easel is ready: open {url}/ in your browser.",
                      f"  Create an account there ({how}).",
                      "  Make yourself an admin in another terminal: make admin EMAIL=you@example.com",
                      "  Ctrl-C here stops everything.", rule, "", ""])


def answers(url: str) -> bool:
    """True when the web server answers ``url`` with anything but a server error."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http address)
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


class Banner:
    """Prints the banner once: after the generation worker's ready line, when the web answers and the
    processes have printed nothing for ``QUIET_SECONDS`` (so that it stays the last thing on screen)."""

    QUIET_SECONDS = 1.0

    def __init__(self, text: str, probe_url: str, write: Callable[[str], None], probe=answers):
        self.text, self.probe_url, self.write, self.probe = text, probe_url, write, probe
        self.started = False
        self.last_line = time.monotonic()

    def see(self, name: str, line: str) -> None:
        self.last_line = time.monotonic()
        if not self.started and name == "worker" and WORKER_READY in line:
            self.started = True
            threading.Thread(target=self._show, daemon=True).start()

    def _show(self) -> None:
        deadline, answered = time.monotonic() + BANNER_WAIT_SECONDS, False
        while time.monotonic() < deadline:
            answered = answered or self.probe(self.probe_url)
            if answered and time.monotonic() - self.last_line >= self.QUIET_SECONDS:
                self.write(self.text)
                return
            time.sleep(0.2)


def print_output(stdin: TextIO, stdout: TextIO, console: TextIO, lock: threading.Lock | None = None,
                 watch: Callable[[str, str], None] | None = None) -> None:
    """Copy every PROCESS_LOG event to ``console`` as ``name | line`` until supervisord goes away.

    ``watch(name, line)`` sees each line after it is printed; ``lock`` is held while writing.
    """
    lock = lock or threading.Lock()
    partial: dict[str, str] = {}
    while True:
        stdout.write("READY\n")
        stdout.flush()
        try:
            headers, payload = _read_event(stdin)
        except EOFError:
            return
        if headers.get("eventname", "").startswith("PROCESS_LOG"):
            header, _, data = payload.partition("\n")
            name = _headers(header).get("processname", "?")
            *lines, rest = (partial.pop(name, "") + data).split("\n")
            if len(rest) > 8192:  # a very long line without an end: print what there is
                lines.append(rest)
                rest = ""
            if rest:
                partial[name] = rest
            with lock:
                console.write("".join(f"{name:<7}| {line}\n" for line in lines))
                console.flush()
            for line in lines:
                if watch:
                    watch(name, line)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def _utf8(stream: BinaryIO, mode: str) -> TextIO:
    # supervisord counts ``len`` in characters of UTF-8 text; newline="" keeps every \r so the count holds.
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="", write_through=mode == "w")


def main() -> None:
    from . import config

    console, lock = _utf8(sys.stderr.buffer, "w"), threading.Lock()

    def write(text: str) -> None:
        with lock:
            console.write(text)
            console.flush()

    settings = config.launch_settings()
    backend, mail_dir = config.mail_destination()
    shown = Banner(banner(config.public_base_url(), backend, mail_dir),
                   config.base_url_for(settings.host, settings.port) + "/", write)
    print_output(_utf8(sys.stdin.buffer, "r"), _utf8(sys.stdout.buffer, "w"), console, lock, shown.see)


if __name__ == "__main__":
    main()
