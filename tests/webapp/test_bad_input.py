"""Bad input, generated (Hypothesis), sent to every route: never a 5xx, nothing written.

Two properties. Every route of the URL map (every method, with the session cookie, a Bearer token or Basic
auth) refuses a body nobody can read: JSON with NaN/Infinity, numbers past 64 bits, deep nesting, NUL or
lone surrogates; form text that is not UTF-8 or holds NUL. And every field a route reads refuses the values
that parse badly: numbers written in other digits ("²", "٣", "１２"), NaN, infinities, 2**64; text with NUL or
lone surrogates; damaged images (truncated JPEG/WebP, a PNG text chunk inflating past 1 MB, bomb headers);
ids past 64 bits in the path. The other fields of each request are valid (``test_the_valid_requests_are_taken``
shows they are), so a refusal is the bad value's doing.

"Nothing written": every table's rows, every file under MEDIA_DIR and every RQ job are the same after the
request as before it.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo
from redis import Redis
from sqlalchemy import select

from tests.support import api_token, csrf_token, sign_in

EXAMPLES = 20  # per route in the default run; the slow variant runs many more
# EASEL_NO_SHRINK=1: report failures as found, without minimising them (a quick count of failures on old code)
QUICK = {"phases": [Phase.explicit, Phase.reuse, Phase.generate]} if os.environ.get("EASEL_NO_SHRINK") else {}
VOLATILE_COLUMNS = {"last_used_at"}  # a token's use is stamped (once a minute): not a row or a change of data


# --- the bad values -------------------------------------------------------------------------------------------

BAD_TEXT_PARTS = ["\x00", "\ud800", "\udfff", "\udc80\ud800", "a\x00b"]
BAD_NUMBER_TEXTS = ["²", "٣", "١٢", "１２", "NaN", "nan", "inf", "-Infinity", "1e999", "18446744073709551616",
                    "-9223372036854775809", "0x10", "1_0", "٧.٥", "⁴"]
RAW_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "18446744073709551616",
                    "-18446744073709551617", "1" * 30]
BAD_PATH_IDS = ["18446744073709551616", "99999999999999999999999", "٣", "１２", "²", "-1", "0"]


def bad_text() -> st.SearchStrategy[str]:
    """Text holding NUL or a lone surrogate somewhere."""
    plain = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
    return st.builds(lambda a, bad, b: a + bad + b, plain, st.sampled_from(BAD_TEXT_PARTS), plain)


def deep_json() -> st.SearchStrategy[str]:
    """Arrays or objects nested past any bound (up to far past the interpreter's recursion limit)."""
    def nest(depth: int, kind: str) -> str:
        if kind == "[":
            return "[" * depth + "]" * depth
        return '{"a":' * depth + "1" + "}" * depth
    return st.builds(nest, st.sampled_from([40, 1_000, 100_000]), st.sampled_from(["[", "{"]))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _image_bytes(fmt: str, size: tuple[int, int] = (64, 64), **options) -> bytes:
    out = io.BytesIO()
    picture = PILImage.effect_noise(size, 60).convert("RGB")
    picture.save(out, fmt, **options)
    return out.getvalue()


def _bomb_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` pixels, with one tiny IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _text_bomb() -> bytes:
    """A valid small PNG with a zTXt chunk that inflates to 2 MB (Pillow's limit is 1 MB)."""
    info = PngInfo()
    info.add_text("parameters", "a" * 2_000_000, zip=True)
    return _image_bytes("PNG", pnginfo=info)


def bad_images() -> st.SearchStrategy[bytes]:
    """Damaged or hostile image files."""
    jpeg, webp, png = _image_bytes("JPEG"), _image_bytes("WEBP"), _image_bytes("PNG")
    truncated = st.builds(lambda data, cut: data[:max(1, int(len(data) * cut))],
                          st.sampled_from([jpeg, webp, png]), st.floats(0.01, 0.97))
    return st.one_of(truncated, st.sampled_from([
        _text_bomb(), _bomb_header(100_000, 100_000), _bomb_header(10_000, 10_000), _bomb_header(0, 0),
        b"", b"GIF89a" + b"\0" * 20, b"\x89PNG\r\n\x1a\n" + b"\0" * 40]))


# --- the routes and their valid requests -----------------------------------------------------------------------

@dataclass
class Route:
    """A request that is taken as it stands; ``numbers``, ``texts`` and ``images`` name the fields to spoil
    (a dotted path into a JSON body, e.g. ``loras.0.scale``)."""

    method: str
    path: str
    body: str  # form, multipart, json
    auth: str  # session, bearer, basic
    fields: dict
    numbers: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # path templates with {id} for ids past 64 bits

    @property
    def name(self) -> str:
        return f"{self.method} {self.path} ({self.body})"


def png_file() -> bytes:
    return _image_bytes("PNG")


def b64_png() -> str:
    return base64.b64encode(png_file()).decode()


GENERATION_FORM = {"prompt": "a red fox", "negative_prompt": "blur", "model": "easel-tiny", "width": "64",
                   "height": "64", "steps": "2", "guidance": "5", "num_images": "1", "style": "none", "seed": "7",
                   "loras-0-name": "", "loras-0-scale": "", "scheduler": "Euler a"}
FORM_NUMBERS = ["width", "height", "steps", "guidance", "num_images", "seed", "loras-0-scale"]


def routes() -> list[Route]:
    """Every route that reads fields, each with a request it takes; ``{image}``, ``{user}`` fill in later."""
    api_generation = {"prompt": "a red fox", "negative_prompt": "blur", "model": "easel-tiny", "width": 64,
                      "height": 64, "steps": 2, "guidance": 5.0, "seed": 7, "num_images": 1, "style": "none",
                      "loras": [], "scheduler": "UniPC"}
    a1111 = {"prompt": "a red fox", "negative_prompt": "blur", "seed": 7, "steps": 2, "width": 64, "height": 64,
             "cfg_scale": 5, "batch_size": 1, "n_iter": 1, "sampler_name": "Euler", "scheduler": "Automatic",
             "alwayson_scripts": {}}
    openai = {"prompt": "a red fox", "model": "easel-tiny", "n": 1, "size": "64x64", "steps": 2, "guidance": 5.0,
              "seed": 7, "negative_prompt": "blur", "style": "none", "response_format": "b64_json"}
    openai_form = {key: str(value) for key, value in openai.items()}
    return [
        Route("POST", "/generations", "form", "session", GENERATION_FORM, FORM_NUMBERS,
              ["prompt", "negative_prompt", "style", "scheduler"]),
        Route("POST", "/generations", "multipart", "session", {**GENERATION_FORM, "strength": "0.6", "init_image": "png"},
              [*FORM_NUMBERS, "strength"], ["prompt"], ["init_image"]),
        Route("POST", "/images/{image}/variations", "form", "session", {"num_images": "1", "strength": "0.3"},
              ["num_images", "strength"]),
        Route("POST", "/images/{image}/upscale", "form", "session", {"factor": "2", "upscaler": "lanczos"}, ["factor"],
              ["upscaler"]),
        Route("POST", "/admin/users/{user}/queue-weight", "form", "session", {"weight": "2"}, ["weight"]),
        Route("POST", "/admin/users/queue-weight", "form", "session", {"weight": "3", "q": "bob", "show": ""}, ["weight"],
              ["q"]),
        Route("POST", "/collections", "form", "session", {"name": "Foxes"}, texts=["name"]),
        Route("POST", "/auth/tokens", "form", "session", {"name": "script"}, texts=["name"],
              ids=["/auth/tokens/{id}/revoke", "/admin/tokens/{id}/revoke"]),
        Route("POST", "/api/v1/generations", "json", "bearer", api_generation,
              ["width", "height", "steps", "guidance", "seed", "num_images"],
              ["prompt", "negative_prompt", "model", "style", "scheduler"]),
        Route("POST", "/api/v1/generations/from-image", "multipart", "bearer",
              {**{k: str(v) for k, v in api_generation.items() if k != "loras"}, "strength": "0.6",
               "init_image": "png"},
              ["width", "height", "steps", "guidance", "seed", "num_images", "strength"], ["prompt"], ["init_image"]),
        Route("POST", "/api/v1/images/{image}/variations", "json", "bearer", {"num_images": 1, "strength": 0.3},
              ["num_images", "strength"]),
        Route("POST", "/api/v1/images/{image}/upscale", "json", "bearer", {"factor": 2, "upscaler": "lanczos"},
              ["factor"], ["upscaler"]),
        Route("POST", "/v1/images/generations", "json", "bearer", openai, ["n", "steps", "guidance", "seed"],
              ["prompt", "negative_prompt", "model", "style", "size"]),
        Route("POST", "/v1/images/edits", "multipart", "bearer", {**openai_form, "strength": "0.6", "image": "png"},
              ["n", "steps", "guidance", "seed", "strength"], ["prompt", "style", "size"], ["image"]),
        Route("POST", "/sdapi/v1/txt2img", "json", "basic", a1111,
              ["seed", "steps", "width", "height", "cfg_scale", "batch_size", "n_iter"],
              ["prompt", "negative_prompt", "sampler_name", "scheduler"]),
        Route("POST", "/sdapi/v1/img2img", "json", "basic",
              {**a1111, "init_images": ["b64png"], "denoising_strength": 0.6, "resize_mode": 0},
              ["denoising_strength", "resize_mode", "steps"], ["prompt"], ["init_images.0"]),
        Route("POST", "/sdapi/v1/extra-single-image", "json", "basic",
              {"image": "b64png", "upscaling_resize": 2, "upscaler_1": "Lanczos", "resize_mode": 0},
              ["upscaling_resize", "resize_mode"], ["upscaler_1"], ["image"]),
        Route("POST", "/sdapi/v1/png-info", "json", "basic", {"image": "b64png"}, images=["image"]),
        Route("POST", "/sdapi/v1/options", "json", "basic", {"sd_model_checkpoint": "easel-tiny"},
              texts=["sd_model_checkpoint"]),
    ]


ROUTES = routes()


# --- the deployment, the requests and what counts as written ---------------------------------------------------

def deployment(app, make_user, make_image) -> SimpleNamespace:
    """Ada (an admin) with an image, a token and a signed-in browser; Bob, whom she can weigh."""
    app.config.update(API_RATE_LIMIT="1000000 per minute", MAX_ACTIVE_PER_USER=100000, MAX_QUEUED_PER_USER=100000,
                      DAILY_IMAGE_QUOTA=100000,
                      LOGIN_LIMIT="100000 per minute", LOGIN_IP_LIMIT="100000 per minute", API_WAIT_SECONDS=0)
    ada = make_user("ada@example.com", is_admin=True)
    bob = make_user("bob@example.com")
    image = make_image(ada)
    token = api_token(app, ada)
    client = sign_in(app, "ada@example.com")
    csrf = csrf_token(client, "/auth/account")
    return SimpleNamespace(app=app, ada=ada, bob=bob, image=image, token=token, client=client, csrf=csrf,
                           media=Path(app.config["MEDIA_DIR"]))


def snapshot(world: SimpleNamespace) -> tuple:
    """Every table's rows, every file under MEDIA_DIR, every RQ job."""
    from webapp.extensions import db

    with world.app.app_context():
        tables = {}
        for table in db.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
            tables[table.name] = sorted(map(repr, db.session.execute(select(*columns)).all()))
        db.session.remove()
    files = sorted(str(p.relative_to(world.media)) for p in world.media.rglob("*") if p.is_file()) \
        if world.media.exists() else []
    jobs = sorted(Redis.from_url(world.app.config["REDIS_URL"]).keys("rq:job:*"))
    return tables, files, jobs


def headers_for(world: SimpleNamespace, auth: str) -> dict[str, str]:
    if auth == "bearer":
        return {"Authorization": f"Bearer {world.token}"}
    if auth == "basic":
        return {"Authorization": "Basic " + base64.b64encode(f"ada@example.com:{world.token}".encode()).decode()}
    return {"X-CSRFToken": world.csrf}


def form_bytes(values: dict) -> bytes:
    """urlencoded with each text as UTF-8 where it can be, and surrogates kept as their (invalid) bytes."""
    return "&".join(f"{k}={v}" for k, v in (
        (quote_from_bytes(str(key).encode()), quote_from_bytes(str(value).encode("utf-8", "surrogatepass")))
        for key, value in values.items())).encode()


def send(world: SimpleNamespace, method: str, path: str, body: str, auth: str, values, raw_json: str | None = None):
    """One request as a client sends it (JSON text, urlencoded bytes, or multipart with files), read whole."""
    response = _send(world, method, path, body, auth, values, raw_json)
    response.get_data()
    response.close()  # a file it served is closed now
    return response


def _send(world: SimpleNamespace, method: str, path: str, body: str, auth: str, values, raw_json: str | None):
    headers = headers_for(world, auth)
    client = world.client if auth == "session" else world.app.test_client()
    if body == "json":
        text = raw_json if raw_json is not None else json.dumps(values)
        return client.open(path, method=method, data=text.encode("utf-8", "surrogatepass"),
                           content_type="application/json", headers=headers)
    if body == "form":
        data = {"csrf_token": world.csrf, **values} if auth == "session" else values
        return client.open(path, method=method, data=form_bytes(data),
                           content_type="application/x-www-form-urlencoded", headers=headers)
    parts = {"csrf_token": world.csrf} if auth == "session" else {}
    body_bytes, boundary = multipart_bytes({**parts, **values})
    return client.open(path, method=method, data=body_bytes, headers=headers,
                       content_type=f"multipart/form-data; boundary={boundary}")


def multipart_bytes(values: dict) -> tuple[bytes, str]:
    """multipart/form-data as a client writes it: bytes values as files, text as UTF-8 (surrogates kept as their
    invalid bytes, which no encoder of the test client would write)."""
    boundary = "easel-bad-input-boundary"
    out = io.BytesIO()
    for key, value in values.items():
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, bytes):
            out.write(f'Content-Disposition: form-data; name="{key}"; filename="picture.png"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n".encode() + value + b"\r\n")
        else:
            out.write(f'Content-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                      + str(value).encode("utf-8", "surrogatepass") + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), boundary


def concrete(world: SimpleNamespace, route: Route) -> tuple[str, dict]:
    """The route's path and valid fields for this deployment (files and base64 images filled in)."""
    path = route.path.format(image=world.image, user=world.bob)
    values = json.loads(json.dumps(route.fields))

    def fill(value):
        if value == "png":
            return png_file()
        if value == "b64png":
            return b64_png()
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value
    return path, fill(values)


def put(values: dict, dotted: str, value) -> None:
    """Set ``a.0.b`` in nested dicts and lists."""
    *parents, last = dotted.split(".")
    target = values
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


SENTINEL = "\u2603BAD\u2603"


def spoiled(route: Route) -> st.SearchStrategy[tuple[str, str, object]]:
    """(kind, field, bad value) for one field of the route."""
    options = []
    if route.numbers:
        fields_ = st.sampled_from(route.numbers)
        if route.body == "json":
            options.append(st.tuples(st.just("raw"), fields_, st.sampled_from(RAW_JSON_NUMBERS)))
            options.append(st.tuples(st.just("value"), fields_, st.sampled_from(BAD_NUMBER_TEXTS)))
        else:
            options.append(st.tuples(st.just("value"), fields_, st.sampled_from(BAD_NUMBER_TEXTS)))
    if route.texts:
        options.append(st.tuples(st.just("value"), st.sampled_from(route.texts), bad_text()))
        if "style" in route.texts:
            options.append(st.tuples(st.just("value"), st.just("style"), st.just("")))
    if route.images:
        options.append(st.tuples(st.just("image"), st.sampled_from(route.images), bad_images()))
    if route.body == "json":
        options.append(st.tuples(st.just("raw"), st.sampled_from(route.numbers + route.texts or ["x"]), deep_json()))
    return st.one_of(options)


def attack(world: SimpleNamespace, route: Route, kind: str, name: str, bad) -> None:
    """Send the route's request with ``name`` spoiled; assert the refusal and that nothing was written."""
    path, values = concrete(world, route)
    raw = None
    if kind == "image":
        put(values, name, base64.b64encode(bad).decode() if route.body == "json" else bad)
    elif kind == "raw":
        put(values, name, SENTINEL)
        raw = json.dumps(values).replace(json.dumps(SENTINEL), bad)
    else:
        put(values, name, bad)
    before = snapshot(world)
    response = send(world, route.method, path, route.body, route.auth, values, raw)
    assert response.status_code < 500, (route.name, name, ascii(bad)[:200], response.get_data(as_text=True)[:500])
    if route.auth != "session" and not (kind == "image" and route.path == "/sdapi/v1/png-info"):
        # png-info reads text chunks, not pixels: a truncated picture whose chunks read is answered
        assert 400 <= response.status_code < 500, (route.name, name, ascii(bad)[:200], response.status_code)
    assert snapshot(world) == before, (route.name, name, ascii(bad)[:200], response.status_code)


def check_fields(app, make_user, make_image, route: Route, examples: int) -> None:
    world = deployment(app, make_user, make_image)

    @given(spoil=spoiled(route))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck), **QUICK)
    def property_(spoil) -> None:
        attack(world, route, *spoil)

    property_()
    for template in route.ids:
        for bad in BAD_PATH_IDS:
            before = snapshot(world)
            response = send(world, "POST", template.format(id=bad), "form", "session", {})
            assert 400 <= response.status_code < 500, (template, bad, response.status_code)
            assert snapshot(world) == before


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_fields_refuse_bad_values(app, make_user, make_image, route: Route):
    check_fields(app, make_user, make_image, route, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_fields_refuse_bad_values_thoroughly(app, make_user, make_image, route: Route):
    check_fields(app, make_user, make_image, route, 300)


def test_the_valid_requests_are_taken(app, make_user, make_image):
    """The requests the property spoils are taken as they stand, so each refusal there is the bad value's."""
    world = deployment(app, make_user, make_image)
    for route in ROUTES:
        path, values = concrete(world, route)
        before = snapshot(world)
        response = send(world, route.method, path, route.body, route.auth, values)
        assert response.status_code in {200, 201, 302, 303, 504}, (route.name, response.get_data(as_text=True)[:500])
        if route.path != "/sdapi/v1/png-info" and route.path != "/sdapi/v1/options":
            assert snapshot(world) != before, f"{route.name} wrote nothing"


# --- every route of the URL map: unreadable bodies and odd path values ---------------------------------------

def every_rule(app) -> list[tuple[str, str]]:
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rules.append((method, rule.rule))
    return sorted(rules)


def unreadable_bodies() -> st.SearchStrategy[tuple[str, object]]:
    """(body kind, payload): JSON text nobody may read, form bodies that are not text."""
    number_json = st.builds(lambda n: f'{{"prompt": "a fox", "steps": {n}, "n": {n}}}',
                            st.sampled_from(RAW_JSON_NUMBERS))
    text_json = st.builds(lambda t: json.dumps({"prompt": t, "name": t, "image": t}), bad_text())
    key_json = st.builds(lambda t: json.dumps({t: 1}), bad_text())
    form = st.builds(lambda t: {"prompt": t, "name": t, "weight": "2"}, bad_text())
    return st.one_of(st.tuples(st.just("json"), st.one_of(number_json, text_json, key_json, deep_json())),
                     st.tuples(st.just("form"), form), st.tuples(st.just("multipart"), form))


def check_every_route(app, make_user, make_image, examples: int) -> None:
    world = deployment(app, make_user, make_image)
    with app.app_context():
        from webapp.extensions import db
        from webapp.tables import ApiToken, Image

        token_id = db.session.scalar(select(ApiToken.id))
        generation_id = db.session.get(Image, world.image).generation_id
    real = {"image_id": world.image, "generation_id": generation_id, "user_id": world.bob, "token_id": token_id}

    for method, rule in every_rule(app):
        check_rule(world, real, method, rule, examples)


def check_rule(world: SimpleNamespace, real: dict, method: str, rule: str, examples: int) -> None:
    """Unreadable bodies, with real ids or odd ones in the path, to one method of one rule."""
    def path_of(odd: str | None) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: odd if odd is not None else str(real.get(m.group(1), "x")), rule)

    @given(body=unreadable_bodies(), auth=st.sampled_from(["session", "bearer", "basic"]),
           odd=st.none() | st.sampled_from(BAD_PATH_IDS))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck), **QUICK)
    def property_(body, auth, odd) -> None:
        kind, payload = body
        path = path_of(odd)
        before = snapshot(world)
        if kind == "json":
            response = send(world, method, path, "json", auth, None, payload)
        else:
            response = send(world, method, path, kind, auth, payload)
        # /readyz answers 503 while no generation worker runs (as here): a readiness answer, not a failure
        not_ready = path == "/readyz" and response.status_code == 503
        assert response.status_code < 500 or not_ready, (method, path, kind, ascii(payload)[:200],
                                                         response.get_data(as_text=True)[:300])
        assert snapshot(world) == before, (method, path, kind, ascii(payload)[:200], response.status_code)

    property_()


def test_every_route_refuses_unreadable_bodies(app, make_user, make_image):
    check_every_route(app, make_user, make_image, examples=4)


@pytest.mark.slow
def test_every_route_refuses_unreadable_bodies_thoroughly(app, make_user, make_image):
    check_every_route(app, make_user, make_image, examples=60)
