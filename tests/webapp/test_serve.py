"""The web server's cap on connections per client address (webapp/serve.py), on real sockets."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from webapp.serve import AddressCappedChannel, build_server


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def server():
    server = build_server(hello, 3, host="127.0.0.1", port=0, threads=2, channel_timeout=30, asyncore_use_poll=True)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server
    server.close()
    thread.join(5)


def connect(server, source: str) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.effective_port), timeout=5, source_address=(source, 0))
    return conn


def closed(conn: socket.socket, within: float = 3.0) -> bool:
    conn.settimeout(within)
    try:
        return conn.recv(100) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def get(server, source: str) -> bytes:
    with connect(server, source) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        return answer


def test_a_fourth_connection_from_one_address_is_closed_and_others_are_served(server):
    held = [connect(server, "127.0.0.5") for _ in range(3)]
    try:
        with connect(server, "127.0.0.5") as extra:
            assert closed(extra)
        assert not closed(held[0], within=0.5)
        assert get(server, "127.0.0.6").endswith(b"hello")  # another address is served
        held.pop().close()  # one closes: its address may connect again
        deadline = time.monotonic() + 5
        while AddressCappedChannel.open_count("127.0.0.5") > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get(server, "127.0.0.5").endswith(b"hello")
    finally:
        for conn in held:
            conn.close()


def test_no_cap_when_set_to_zero():
    server = build_server(hello, 0, host="127.0.0.1", port=0, threads=1, asyncore_use_poll=True)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        held = [connect(server, "127.0.0.8") for _ in range(20)]
        assert get(server, "127.0.0.8").endswith(b"hello")
        for conn in held:
            conn.close()
    finally:
        server.close()
        thread.join(5)
