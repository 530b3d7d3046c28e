"""The site as a newcomer starts it: ``python -m webapp.launch`` (what ``make run`` runs) on a port other than
5000, with a fresh instance folder, the embedded Redis, waitress, the real workers and scheduler, and mail
written to files. A person signs up through the emailed link, makes a picture, follows every link the site
emails, shows or returns, and each one carries the site's real address and works.

One site serves the whole module; its teardown is Ctrl-C, and nothing is left running.
"""
from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import openai
import pytest
import requests

from tests.support import CSRF_RE, LINK_RE, ROOT, free_port, links_in, metric_sample, wait_for
from tests.webapp.test_launch import descendants, stop_site

PASSWORD = "correct horse battery"
METRICS_TOKEN = "tok-123"
FIELDS = {"prompt": "a red circle on a blue background", "negative_prompt": "", "model": "easel-tiny",
          "width": "64", "height": "64", "steps": "4", "guidance": "2.0", "seed": "7", "num_images": "1",
          "style": "none"}
CHORE_SECONDS = 4  # the scheduler's chores come this often (30 s by default), so a short wait sees several
# What a newcomer's shell does not have: the test run's own deployment settings.
NOT_INHERITED = ("EASEL_", "MAIL", "REDIS_URL", "DATABASE_URL", "SECRET_KEY", "MEDIA_DIR", "PUBLIC_BASE_URL",
                 "STORAGE", "S3_", "HOST", "PORT", "RATELIMIT_")


class Site:
    """The launched site: its process, console log, instance folder, and a person's browser session."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path, instance: Path):
        self.proc, self.url, self.log, self.instance = proc, url, log, instance
        self.http = requests.Session()
        self.seen: set[int] = set()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def token(self, path: str, session: requests.Session | None = None) -> str:
        match = CSRF_RE.search((session or self.http).get(self.url + path, timeout=10).text)
        assert match, f"no csrf_token on {path}"
        return match.group(1) or match.group(2)

    def mails(self, to: str) -> list[EmailMessage]:
        """The emails written so far to ``to``, oldest first."""
        folder = self.instance / "mail"
        found = []
        for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if message["To"] == to:
                found.append(message)
        return found

    def wait_mail(self, to: str, subject_start: str, timeout: float = 60) -> EmailMessage:
        def arrived():
            return next((m for m in self.mails(to) if m["Subject"].startswith(subject_start)), None)
        return wait_for(arrived, timeout=timeout, interval=0.2, message=f"the email {subject_start!r} to {to}")


def text_of(message: EmailMessage) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_type().startswith("text/"))


def absolute_links(text: str) -> list[str]:
    return [link.rstrip(".,)") for link in LINK_RE.findall(text)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("make-run")
    port = free_port()
    while port == 5000:
        port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
    # A fresh checkout's `make run`, but its files in a temp folder, mail in files, one torch thread.
    env.update(PORT=str(port), EASEL_REDIS_PORT=str(free_port()), EASEL_INSTANCE_DIR=str(tmp / "instance"),
               MAIL_BACKEND="file", EASEL_TORCH_THREADS="1", HF_HUB_OFFLINE="1",
               EASEL_REAPER_INTERVAL=str(CHORE_SECONDS), METRICS_TOKEN=METRICS_TOKEN)
    stale = tmp / "instance" / "metrics" / "counter_1.db"  # as if left by an earlier run: emptied at start
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"junk")
    log = tmp / "console.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webapp.launch"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    site = Site(proc, f"http://127.0.0.1:{port}", log, tmp / "instance")
    served = False
    try:
        wait_for(lambda: "Listening on generate" in site.log_text() or proc.poll() is not None, timeout=180,
                 message="the generation worker")
        assert proc.poll() is None, site.log_text()[-3000:]
        site.seen |= descendants(proc.pid)
        yield site
        site.seen |= descendants(proc.pid)
        served = True
    finally:
        stop_site(proc, site.seen, interrupt=served)


@pytest.fixture(scope="module")
def person(site: Site) -> str:
    """Ada signs up as a newcomer does: the form, then the link in the email, then she is signed in."""
    address = "ada@example.com"
    response = site.http.post(site.url + "/auth/register", timeout=30, data={
        "email": address, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": site.token("/auth/register")})
    assert response.status_code == 200, response.text[:2000]
    message = site.wait_mail(address, "")
    [link] = links_in(text_of(message), "/auth/welcome/")[:1]
    assert link.startswith(site.url + "/auth/welcome/"), link
    page = site.http.get(link, timeout=10)  # the emailed link, as it is
    assert page.status_code == 200
    response = site.http.post(link, data={"csrf_token": site.token(link.removeprefix(site.url))}, timeout=30)
    assert response.status_code == 200 and "Sign out" in response.text, response.text[:2000]
    return address


def make_picture(site: Site, **overrides) -> dict:
    data = {**FIELDS, **overrides, "csrf_token": site.token("/")}
    response = site.http.post(site.url + "/generations", data=data, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text[:2000]
    generation_id = response.headers["Location"].rsplit("/", 1)[1]

    def final():
        state = site.http.get(f"{site.url}/api/generations/{generation_id}", timeout=10).json()
        return state if state["status"] in {"succeeded", "failed", "canceled"} else None
    state = wait_for(final, timeout=120, interval=0.3, message="the picture")
    assert state["status"] == "succeeded", state
    return state


def notify_box(site: Site) -> str:
    """The account page's "email me" checkbox, as HTML."""
    account = site.http.get(site.url + "/auth/account", timeout=10).text
    [box] = re.findall(r'<input[^>]*id="notify_by_email"[^>]*>', account)
    return box


def test_the_site_says_its_real_address(site):
    assert f"Easel is starting at {site.url}/" in site.log_text()
    assert ":5000" not in site.url


def test_one_banner_when_everything_is_up_then_a_quiet_console(site):
    text = wait_for(lambda: "Easel is ready" in (t := site.log_text()) and t, timeout=60, message="the banner")
    assert text.count("Easel is ready") == 1
    banner = text[text.index("Easel is ready"):]
    assert f"open {site.url}/" in banner and "Create an account there (" in banner
    assert "make admin EMAIL=" in banner
    time.sleep(3 * CHORE_SECONDS + 1)  # idle: the scheduler and the chore worker run three rounds meanwhile
    text = site.log_text()
    after = text[text.index("Ctrl-C here stops everything."):].splitlines()[2:]  # past the banner's last rule
    assert len(after) <= 2, "an idle console printed after the banner:\n" + "\n".join(after)


def test_emailed_result_and_unsubscribe_links_carry_the_port_and_work(site, person):
    made = make_picture(site, prompt="a yellow star in the top left, green background")
    message = site.wait_mail(person, "Your art is ready")
    # On the console, a generation is one line when it starts and one when it ends (what it made, in how long).
    told = [line for line in site.log_text().splitlines() if made["id"] in line and line.startswith("worker")]
    assert len(told) == 2 and f"generation {made['id']} done: 1 image(s) in" in told[-1], "\n".join(told)
    body = text_of(message)
    local = [link for link in absolute_links(body) if "127.0.0.1" in link or "localhost" in link]
    assert local and all(link.startswith(site.url + "/") for link in local), local
    assert message["List-Unsubscribe"].startswith(f"<{site.url}/email/unsubscribe/"), message["List-Unsubscribe"]

    stranger = requests.Session()  # the email opened on another device: no cookies
    [result] = links_in(body, "/s/")[:1]
    page = stranger.get(result, timeout=10)
    assert page.status_code == 200 and "a yellow star in the top left" in page.text
    picture = stranger.get(result.split("?")[0] + "/file", timeout=10)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")

    [unsubscribe] = links_in(body, "/email/unsubscribe/")[:1]
    page = stranger.get(unsubscribe, timeout=10)
    assert page.status_code == 200 and "Turn off emails" in page.text
    assert "checked" in notify_box(site)
    done = stranger.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert done.status_code == 200
    assert "checked" not in notify_box(site)


def test_share_link_carries_the_port_and_works(site, person):
    state = make_picture(site, prompt="a blue square at the bottom, white background")
    image_id = state["images"][0]["id"]
    made = site.http.post(site.url + "/collections", data={"name": "Shapes", "csrf_token": site.token("/collections")},
                          allow_redirects=False, timeout=10)
    assert made.status_code == 303, made.text[:1000]
    detail = made.headers["Location"]
    collection_id = detail.rstrip("/").rsplit("/", 1)[1]
    token = site.token(detail)
    added = site.http.post(site.url + "/collections/images", timeout=10, data={
        "image_ids": image_id, "collection_id": collection_id, "csrf_token": token})
    assert added.status_code == 200
    shared = site.http.post(f"{site.url}/collections/{collection_id}/share", data={"csrf_token": token}, timeout=10)
    assert shared.status_code == 200
    links = [link for link in absolute_links(shared.text) if "/c/" in link]
    assert links, "no share link on the collection page"
    [link] = set(links)
    assert link.startswith(site.url + "/c/"), link
    page = requests.get(link, timeout=10)  # whoever gets the link, not signed in
    assert page.status_code == 200 and "Shapes" in page.text
    [thumbnail] = re.findall(r'src="(/c/[^"]+/thumbnail)"', page.text)[:1]
    assert requests.get(site.url + thumbnail, timeout=10).status_code == 200


def test_openai_url_results_carry_the_port_and_work(site, person):
    token = site.token("/auth/tokens")
    page = site.http.post(site.url + "/auth/tokens", data={"name": "script", "csrf_token": token}, timeout=10)
    [secret] = re.findall(r'<code id="new-token"[^>]*>([^<]+)</code>', page.text)
    client = openai.OpenAI(base_url=site.url + "/v1", api_key=secret.strip(), max_retries=0, timeout=120)
    answer = client.images.generate(model="easel-tiny", prompt="a purple triangle, black background", size="64x64",
                                    response_format="url", extra_body={"steps": 4})
    [item] = answer.data
    assert item.url.startswith(site.url + "/s/"), item.url
    picture = requests.get(item.url, timeout=10)  # the url works without the token or a session
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def slow_clients(site: Site, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` connections from ``source`` that hold the server's attention: idle, half a request line, half
    the headers, or all headers and a tenth of the announced body; then nothing more."""
    host, port = site.url.removeprefix("http://").split(":")
    starts = [b"", b"GET /auth/lo", b"GET /auth/login HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUser-Agent: slow",
              b"POST /auth/login HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/x-www-form-"
              b"urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a%40example.com&password="]
    connections = []
    for number in range(count):
        conn = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
        conn.sendall(starts[number % len(starts)])
        connections.append(conn)
    return connections


def closed_by_server(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return conn.recv(65536) == b""  # an answer (408, 400) before the close is fine too
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def test_fifty_slow_clients_do_not_stall_the_login_page(site):
    connections = slow_clients(site, 50)
    try:
        time.sleep(1)  # the server has accepted them and is waiting on each
        for _ in range(5):
            started = time.monotonic()
            page = requests.get(site.url + "/auth/login", timeout=10)
            took = time.monotonic() - started
            assert page.status_code == 200 and "Sign in" in page.text
            assert took < 1.0, f"the login page took {took:.2f} s beside 50 slow clients"
        # Read timeouts: the server hangs up on every one of them, at the latest after WEB_IDLE_TIMEOUT plus
        # the sweep interval (15 + 5 s by default).
        wait_for(lambda: all(closed_by_server(conn) for conn in connections), timeout=30, interval=1,
                 message="the server to close the slow connections")
    finally:
        for conn in connections:
            conn.close()


def test_one_address_holds_at_most_its_share_of_connections(site):
    """Past WEB_CONNECTIONS_PER_ADDRESS (100) from one address, the server closes new connections at once, while
    another address (127.0.0.1; the loopback answers all of 127/8) is served."""
    held = slow_clients(site, 100, source="127.0.0.7")
    extra = slow_clients(site, 5, source="127.0.0.7")
    try:
        wait_for(lambda: all(closed_by_server(conn) for conn in extra), timeout=5, interval=0.2,
                 message="the server to close the connections past the cap")
        assert not any(closed_by_server(conn) for conn in held[:20])  # the first ones stay until they idle out
        page = requests.get(site.url + "/auth/login", timeout=10)
        assert page.status_code == 200 and "Sign in" in page.text
    finally:
        for conn in held + extra:
            conn.close()


def scrape(site: Site) -> str:
    response = requests.get(site.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return response.text


def test_the_web_and_the_worker_count_into_one_scrape(site, person):
    """With METRICS_TOKEN, the web process and the worker count into one scrape; stale files are emptied at start."""
    assert not (site.instance / "metrics" / "counter_1.db").exists()
    assert requests.get(site.url + "/metrics", timeout=10).status_code == 404
    before = scrape(site)
    assert metric_sample(before, "easel_workers", queue="generate:easel-tiny") == 1
    made = 0
    for _ in (1, 2):
        make_picture(site, steps="2", num_images="2")
        made += 1
        after = scrape(site)
        for name, labels, per in (("easel_generations_total", {"status": "succeeded", "model": "easel-tiny"}, 1),
                                  ("easel_images_total", {"model": "easel-tiny"}, 2),
                                  ("easel_generation_seconds_count", {"model": "easel-tiny"}, 1),
                                  ("easel_http_request_duration_seconds_count",
                                   {"route": "/generations", "status": "303"}, 1)):
            assert metric_sample(after, name, **labels) - metric_sample(before, name, **labels) == per * made, name
        assert metric_sample(after, "easel_batch_size_count") - metric_sample(before, "easel_batch_size_count") >= made
    # the web's and the worker's histograms are added up (each process counts into its own file)
    assert len({path.name.split("_")[-1] for path in (site.instance / "metrics").glob("histogram_*.db")}) >= 2
    assert metric_sample(after, "easel_queue_jobs", queue="generate:easel-tiny") == 0
