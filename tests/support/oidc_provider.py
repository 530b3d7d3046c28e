"""A real OpenID Connect provider for the tests, built on Authlib's server side and served by werkzeug in a thread.

Discovery (``/.well-known/openid-configuration``), an authorization endpoint (the authorization code flow with
PKCE required, nonce and state handed back), a token endpoint (``client_secret_basic``) that signs an RS256 ID
token, and its JWKS. Codes are single-use and expire. The person "signed in" at the provider is whoever the test
sets as ``provider.person`` (the authorization endpoint consents at once, as a provider with a remembered
session does).
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

from . import free_port

CODE_SECONDS = 60


@dataclass
class Person:
    """Who is signed in at the provider."""

    sub: str
    email: str
    email_verified: bool = True
    name: str = ""


@dataclass
class Client(ClientMixin):
    """A registered relying party (Easel)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic" if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    """An issued authorization code, with what the token request must match."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    person: Person
    issued: float = field(default_factory=time.time)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return int(self.issued)

    def is_expired(self) -> bool:
        return time.time() > self.issued + CODE_SECONDS


class OIDCProvider:
    """The provider: ``start()``, then ``issuer``; ``register(client_id, secret, redirect_uri)``; ``person``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.person = Person(sub="person-1", email="ada@example.com")
        self.token_requests = 0
        self._lock = threading.Lock()
        self.app = self._build()
        self._server = None

    def register(self, client_id: str, client_secret: str, redirect_uri: str | None = None) -> Client:
        """Register a client (its redirect URI may be added later, once the site's port is known)."""
        client = self.clients.setdefault(client_id, Client(client_id, client_secret))
        if redirect_uri:
            client.redirect_uris.append(redirect_uri)
        return client

    def _build(self) -> Flask:
        provider = self
        app = Flask("oidc-provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 300}

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

            def save_authorization_code(self, code, req):
                with provider._lock:
                    provider.codes[code] = Code(
                        code=code, client_id=req.client.client_id, redirect_uri=req.payload.redirect_uri,
                        scope=req.payload.scope, nonce=req.payload.data.get("nonce"),
                        code_challenge=req.payload.data.get("code_challenge"),
                        code_challenge_method=req.payload.data.get("code_challenge_method"), person=req.user)

            def query_authorization_code(self, code, client):
                found = provider.codes.get(code)
                if found and found.client_id == client.client_id and not found.is_expired():
                    return found
                return None

            def delete_authorization_code(self, authorization_code):
                with provider._lock:  # single use: a replayed code finds nothing
                    provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.person

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return any(code.nonce == nonce and code.client_id == req.payload.client_id
                           for code in provider.codes.values())

            def resolve_client_private_key(self, client):
                return provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "test-key"}

            def generate_user_info(self, person, scope):
                info = UserInfo(sub=person.sub)
                if "email" in scope:
                    info.update(email=person.email, email_verified=person.email_verified)
                if "profile" in scope and person.name:
                    info["name"] = person.name
                return info

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=lambda token, req: None)
        server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "email", "email_verified", "name"],
            })

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([provider.key]).as_dict(private=False))

        @app.get("/authorize")
        def authorize():
            try:
                grant = server.get_consent_grant(end_user=provider.person)
            except OAuth2Error as error:
                return jsonify(error=error.error, error_description=error.description), 400
            return server.create_authorization_response(grant_user=provider.person, grant=grant)

        @app.post("/token")
        def token():
            provider.token_requests += 1
            return server.create_token_response()

        return app

    def start(self) -> OIDCProvider:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
