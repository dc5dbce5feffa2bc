"""Authentication for FHIR servers, as httpx.Auth implementations.

Kinds: none, HTTP basic, a static bearer token, OAuth2 client credentials with a client secret, and SMART
Backend Services (a `private_key_jwt` client assertion signed RS384 or ES384 with a `kid`, the token endpoint
discovered from `.well-known/smart-configuration`). Tokens are renewed before they expire, and once more when
the server answers 401 (a token revoked or expired mid-run).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from connectors.settings import AuthSettings
from connectors.transport import describe
from foundation.errors import AuthenticationFailed, ConfigError, SourceUnreachable
from foundation.secrets import Secret

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RENEW_MARGIN_S = 60


class BearerAuth(httpx.Auth):
    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request


@dataclass
class _Token:
    value: str = ""
    expires_at: float = 0.0

    def fresh(self) -> bool:
        return bool(self.value) and time.time() < self.expires_at - RENEW_MARGIN_S


class ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client credentials with a client secret (sent as HTTP basic to the token endpoint)."""

    def __init__(self, settings: AuthSettings, base_url: str, token_client: httpx.Client) -> None:
        self.settings = settings
        self.base_url = base_url
        self._client = token_client
        self._token = _Token()
        self._lock = threading.Lock()
        self._token_url = settings.token_url

    def token_url(self) -> str:
        if self._token_url is None:
            self._token_url = discover_token_url(self._client, self.base_url)
        return self._token_url

    def token_request(self) -> dict[str, Any]:
        """Arguments for the token POST (form data and auth)."""
        assert self.settings.client_id and self.settings.client_secret
        secret = self.settings.client_secret.resolve()
        return {"data": {"grant_type": "client_credentials", "scope": self.settings.scope},
                "auth": (self.settings.client_id, secret.reveal())}

    def _renew(self, stale: str) -> str:
        with self._lock:
            if self._token.value != stale and self._token.fresh():
                return self._token.value  # another thread renewed it
            url = self.token_url()
            try:
                response = self._client.post(url, **self.token_request())
            except httpx.TransportError as error:
                raise SourceUnreachable(f"token endpoint {url} unreachable: {describe(error)}; check the "
                                        "token_url (or the server's SMART configuration) and that this machine "
                                        "can reach it, then rerun") from None
            if response.status_code != 200:
                raise AuthenticationFailed(f"token endpoint {url} refused client {self.settings.client_id!r}: "
                                           f"HTTP {response.status_code} {_oauth_error(response)}; check client_id, "
                                           "its secret or key (key_id, algorithm) as registered with the server, "
                                           "and the scope", response.status_code)
            body = response.json()
            self._token = _Token(body["access_token"], time.time() + float(body.get("expires_in", 300)))
            return self._token.value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token.value if self._token.fresh() else self._renew(self._token.value)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._renew(token)}"
            yield request


class SmartBackendAuth(ClientCredentialsAuth):
    """SMART Backend Services: a short-lived JWT signed with the client's private key instead of a secret."""

    def token_request(self) -> dict[str, Any]:
        settings = self.settings
        assert settings.client_id and settings.private_key and settings.key_id
        now = int(time.time())
        claims = {"iss": settings.client_id, "sub": settings.client_id, "aud": settings.audience or self.token_url(),
                  "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        try:
            assertion = jwt.encode(claims, settings.private_key.resolve().reveal(), algorithm=settings.algorithm,
                                   headers={"kid": settings.key_id, "typ": "JWT"})
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            raise ConfigError(f"cannot sign a {settings.algorithm} assertion with the private key from "
                              f"{settings.private_key.describe()}: {type(error).__name__}; it must be the PEM private "
                              f"key of the pair registered with the server, of the kind {settings.algorithm} needs "
                              "(RSA for RS384, EC P-384 for ES384)") from None
        return {"data": {"grant_type": "client_credentials", "scope": settings.scope,
                         "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}}


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('error', '')}: {body.get('error_description', '')}".strip(": ")
    except ValueError:
        return response.reason_phrase


def discover_token_url(client: httpx.Client, base_url: str) -> str:
    """The token endpoint from the server's SMART configuration (at the FHIR base, then at the host root)."""
    root = httpx.URL(base_url).copy_with(path="/", query=None)
    for url in (f"{base_url.rstrip('/')}/.well-known/smart-configuration",
                str(root.join(".well-known/smart-configuration"))):
        try:
            response = client.get(url)
        except httpx.TransportError as error:
            raise SourceUnreachable(f"{url} unreachable: {describe(error)}; check base_url and that this machine "
                                    "can reach the server, or set token_url in the configuration") from None
        if response.status_code == 200 and "token_endpoint" in response.json():
            return str(response.json()["token_endpoint"])
    raise AuthenticationFailed(f"{base_url} publishes no token_endpoint in .well-known/smart-configuration; "
                               "set token_url in the configuration")


@dataclass
class AuthFactory:
    """Builds the httpx.Auth for a settings object (secrets resolved now, so a missing one fails early)."""

    settings: AuthSettings
    base_url: str
    token_client: httpx.Client = field(repr=False)

    def build(self) -> httpx.Auth | None:
        s = self.settings
        if s.kind == "none":
            return None
        # AuthSettings has checked that each kind has what it needs; the asserts say so to the type checker.
        if s.kind == "basic":
            assert s.username and s.password
            return httpx.BasicAuth(s.username, s.password.resolve().reveal())
        if s.kind == "bearer":
            assert s.token
            return BearerAuth(s.token.resolve())
        if s.kind == "client-credentials":
            assert s.client_secret
            s.client_secret.resolve()
            return ClientCredentialsAuth(s, self.base_url, self.token_client)
        assert s.private_key
        s.private_key.resolve()
        return SmartBackendAuth(s, self.base_url, self.token_client)
