"""Headers every response gets: the Content-Security-Policy, HSTS, caching, and Secure cookies over https."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_login import current_user

# Images may come from the site, from data:/blob: URLs the scripts make, and (STORAGE=s3) from the bucket.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'")
HSTS = "max-age=31536000; includeSubDomains"


def image_sources(config: dict) -> str:
    """``img-src``: the site, data: and blob:, plus the S3 endpoint that presigned image links point at."""
    sources = ["'self'", "data:", "blob:"]
    if config.get("STORAGE") == "s3":
        endpoint = config.get("S3_ENDPOINT_URL")
        if endpoint:
            parts = urlsplit(endpoint)
            sources.append(f"{parts.scheme}://{parts.netloc}")
        else:
            sources.append("https://*.amazonaws.com")  # AWS: bucket hosts vary by bucket and region
    return " ".join(sources)


class SecureCookies:
    """WSGI middleware: every cookie sent over https gets the Secure flag.

    Config sets Secure from ``PUBLIC_BASE_URL``; a request that came over https (directly, or as a trusted
    proxy's ``X-Forwarded-Proto`` says, once ``ProxyFix`` has run) gets it even when that setting does not
    know. Done here because Flask writes the session cookie after every ``after_request`` hook.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("wsgi.url_scheme") != "https":
            return self.wsgi_app(environ, start_response)

        def secure_start_response(status, headers, exc_info=None):
            headers = [(name, value + "; Secure" if name.lower() == "set-cookie" and "; secure" not in value.lower()
                        else value) for name, value in headers]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, secure_start_response)


def register(app: Flask) -> None:
    """Add the after-request hook that sets the headers, and Secure cookies over https (inside ``ProxyFix``)."""
    app.wsgi_app = SecureCookies(app.wsgi_app)
    csp = CSP.format(images=image_sources(app.config))
    hsts = app.config.get("PUBLIC_BASE_URL", "").startswith("https://")

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        # Pages for a signed-in person are theirs alone: never kept by a browser or a shared cache.
        if "Cache-Control" not in response.headers and request.endpoint != "static" and current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response
