"""The web server the Procfile's `web` line runs: waitress, with a cap on connections per client address.

Waitress reads each request whole in its event loop, closes idle connections and caps their total
(docs/operations-web-server.md), but has no option for a cap per address: one address could hold most
of `WEB_CONNECTION_LIMIT` by sending a byte every few seconds. `AddressCappedChannel` counts the open
connections of each address and closes, as soon as it is accepted, one past `WEB_CONNECTIONS_PER_ADDRESS`.
It is waitress's own channel class, subclassed through its public constructor and `del_channel`.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

from webapp import config

log = logging.getLogger("easel.web")


class AddressCappedChannel(HTTPChannel):
    """An HTTP connection that is closed at once when its address already holds `per_address` others."""

    _counted: str | None = None
    per_address = 0  # 0: no cap (behind a proxy every connection comes from the proxy's address)
    _open: Counter = Counter()
    _lock = threading.Lock()

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: dict | None = None) -> None:
        super().__init__(server, sock, addr, adj, map=map)
        self._counted = _address(addr)
        with self._lock:
            self._open[self._counted] += 1
            over = self.per_address and self._open[self._counted] > self.per_address
        if over:
            log.warning("closing a connection from %s: it holds %d already (WEB_CONNECTIONS_PER_ADDRESS)",
                        self._counted, self.per_address)
            self.close()

    def del_channel(self, map: dict | None = None) -> None:
        """Leave the event loop's map (every way a connection closes passes here) and stop counting it."""
        counted, self._counted = self._counted, None
        if counted is not None:
            with self._lock:
                self._open[counted] -= 1
                if self._open[counted] <= 0:
                    del self._open[counted]
        super().del_channel(map)

    @classmethod
    def open_count(cls, address: str) -> int:
        """Open connections from ``address`` now."""
        with cls._lock:
            return cls._open.get(address, 0)


def _address(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


def build_server(app: Any, per_address: int, **adjustments: Any) -> BaseWSGIServer:
    """A waitress server for ``app`` whose connections are capped per address (0: no cap)."""
    channel = type("EaselChannel", (AddressCappedChannel,), {"per_address": max(0, per_address)})
    server = create_server(app, **adjustments)
    servers = [server] if isinstance(server, BaseWSGIServer) else [
        s for s in getattr(server, "map", {}).values() if isinstance(s, BaseWSGIServer)]
    for one in servers:
        one.channel_class = channel
    return server


def main() -> None:
    """Serve wsgi:app until stopped, as `waitress.serve` does (its "Serving on" line, then the event loop)."""
    from wsgi import app  # configures logging (webapp/logs.py)

    waitress_log = logging.getLogger("waitress")
    if waitress_log.level == logging.NOTSET:
        waitress_log.setLevel(logging.INFO)
    adjustments = config.web_server_settings()
    server = build_server(app, adjustments.pop("per_address"), **adjustments)
    server.print_listen("Serving on http://{}:{}")
    server.run()


if __name__ == "__main__":
    main()
