"""HTTP to a FHIR server: one httpx client, retries with backoff and jitter, and errors that say what failed.

Retried: 429, 500, 502, 503, 504, timeouts and dropped connections (a body cut mid-page included), waiting as
`Retry-After` says (seconds or an HTTP date) or with exponential backoff and jitter. When retries run out the
error names the server, what was being fetched (resource type and page) and the last failure.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from connectors import jsonio
from connectors.auth import AuthFactory
from connectors.settings import ServerSettings, TransportSettings
from connectors.transport import untrusted_certificate
from foundation.errors import AuthenticationFailed, SourceProtocolError, SourceUnreachable

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "ilp-cohort-connector/0.1"


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class FhirClient:
    """GETs and streams from one FHIR server with auth, retries and clear errors. Thread-safe."""

    def __init__(self, server: ServerSettings) -> None:
        self.base_url = server.base_url
        self.transport: TransportSettings = server
        verify: ssl.SSLContext | bool = True
        if self.transport.ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(self.transport.ca_bundle))
        common: dict[str, Any] = {"verify": verify, "timeout": self.transport.timeout_s,
                                  "headers": {"User-Agent": USER_AGENT}}
        self._token_client = httpx.Client(**common)
        auth_impl = AuthFactory(server.auth, self.base_url, self._token_client).build()
        self._client = httpx.Client(auth=auth_impl, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT, "Accept": "application/fhir+json"},
                                    verify=verify, timeout=self.transport.timeout_s)
        self.stats = ClientStats()

    def close(self) -> None:
        self._client.close()
        self._token_client.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def _retrying(self, what: str) -> Retrying:
        first = self.transport.backoff_initial_s
        backoff = wait_exponential_jitter(multiplier=first, jitter=first, max=self.transport.backoff_max_s)
        cap = self.transport.retry_after_cap_s

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Retryable) and error.retry_after is not None:
                return min(error.retry_after, cap)
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.stats.add(retries=1)
            log.warning("%s: %s (attempt %d), retrying", what, error, state.attempt_number)

        return Retrying(stop=stop_after_attempt(self.transport.max_attempts), wait=wait, before_sleep=before_sleep,
                        retry=retry_if_exception_type(_Retryable), reraise=True)

    def _check(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After")))
        if status == 401:
            raise AuthenticationFailed(
                f"{self.base_url} refused {what}: HTTP 401 {_diagnostics(response)}. Check the source's auth "
                "settings (kind, client or user, secret, scope) and that its credentials are still valid, then rerun: "
                "the pull resumes where it stopped", status)
        if status == 403:
            raise AuthenticationFailed(
                f"{self.base_url} refused {what}: HTTP 403 {_diagnostics(response)}. The credentials were accepted "
                "but not for this request: ask the server's administrators for read access to it (scope "
                "system/*.read), then rerun", status)
        if status >= 400:
            raise SourceProtocolError(
                f"{self.base_url} answered {what} with HTTP {status} {_diagnostics(response)}. If the server does not "
                "support this request, say so in the source's server_features (docs/configuration.md); otherwise "
                "ask its administrators, then rerun: the pull resumes where it stopped", status)

    def _with_retries(self, send: Callable[[], httpx.Response], what: str, url: str) -> httpx.Response:
        try:
            for attempt in self._retrying(what):
                with attempt:
                    return send()
        except _Retryable as error:
            raise SourceUnreachable(f"{self.base_url}: {what} failed after {self.transport.max_attempts} "
                                    f"attempts; last: {error.reason} ({url}). Check that the server is up and "
                                    "reachable from here (or raise max_attempts and backoff_max_s for a server that "
                                    "throttles hard), then rerun: the pull resumes where it stopped") from None
        raise AssertionError("unreachable")

    def _send(self, request: httpx.Request, what: str, stream: bool, authenticated: bool = True) -> httpx.Response:
        try:
            if authenticated:
                response = self._client.send(request, stream=stream)
            else:
                response = self._client.send(request, stream=stream, auth=None)
            if not stream or response.status_code >= 400:
                response.read()
        except httpx.TransportError as error:  # refused, reset, timed out, cut mid-body, untrusted
            refused = untrusted_certificate(error)
            if refused:
                raise SourceUnreachable(f"{self.base_url}: {what} not sent: {refused}") from None
            raise _Retryable(type(error).__name__) from error
        finally:
            self.stats.add(requests=1)
        try:
            self._check(response, what)
        except BaseException:
            response.close()
            raise
        return response

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request with retries; the body is read."""
        url = self.url(path)
        response = self._with_retries(
            lambda: self._send(self._client.build_request(method, url, **kwargs), what, stream=False), what, url)
        self.stats.add(bytes=len(response.content))
        return response

    def get_json(self, path: str, what: str, **kwargs: Any) -> tuple[httpx.Response, dict[str, Any]]:
        response = self.request("GET", path, what, **kwargs)
        try:
            body = jsonio.loads(response.content)
        except ValueError:
            raise SourceProtocolError(f"{self.base_url}: {what} is not JSON ({self.url(path)}): check that "
                                      "base_url is the FHIR base and that no proxy answers in its place") from None
        if not isinstance(body, dict):
            raise SourceProtocolError(f"{self.base_url}: {what} is not a JSON object ({self.url(path)}): check that "
                                      "base_url is the FHIR base")
        return response, body

    @contextmanager
    def stream(self, path: str, what: str, authenticated: bool = True, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed GET: retried until the response starts; a failure while reading is the caller's to retry.

        `authenticated=False` sends no credentials (a file on a host that does not need our token).
        """
        url = self.url(path)
        response = self._with_retries(
            lambda: self._send(self._client.build_request("GET", url, **kwargs), what, True, authenticated), what, url)
        try:
            yield response
        finally:
            response.close()

    def capability(self) -> dict[str, Any]:
        """The server's CapabilityStatement: what the pull is planned from, and what the run manifest names."""
        try:
            _, body = self.get_json("metadata", "the CapabilityStatement")
        except SourceProtocolError as error:
            if error.status != 404:
                raise
            raise SourceProtocolError(f"{self.base_url}/metadata is not found (HTTP 404): check that base_url is the "
                                      "FHIR base (the URL that /metadata follows)", 404) from None
        if body.get("resourceType") != "CapabilityStatement":
            raise SourceProtocolError(f"{self.base_url}/metadata is a {body.get('resourceType')}, "
                                      "not a CapabilityStatement: check that base_url is the FHIR base (the "
                                      "URL that /metadata follows)")
        return body


def _diagnostics(response: httpx.Response) -> str:
    """What an OperationOutcome says, shortened; never echoes request headers."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    issues = body.get("issue", []) if isinstance(body, dict) else []
    text = "; ".join(str(i.get("diagnostics") or i.get("details", {}).get("text") or i.get("code")) for i in issues)
    return (text or response.reason_phrase)[:300]
