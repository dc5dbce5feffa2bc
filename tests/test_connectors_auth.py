"""Authentication against the real local FHIR server: SMART Backend Services, client secrets, basic, bearer."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors import AuthSettings, LandingZone, RestSettings, RestSource, SecretRef, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer
from foundation.errors import AuthenticationFailed, ConfigError
from tests.landing_helpers import landed_versions, server_versions

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 20, "max_attempts": 3}
Consortium = tuple[Path, dict[str, Any]]


def _key_pair(algorithm: str, kid: str) -> tuple[bytes, dict[str, Any]]:
    """A private key (PEM) and its public JWK."""
    if algorithm == "RS384":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    else:
        private = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


@pytest.fixture
def aurora(fhir_server: FhirTestServer, demo_consortium: Consortium) -> FhirTestServer:
    fhir_server.load_centre(demo_consortium[0] / "aurora")
    return fhir_server


def _smart(server: FhirTestServer, tmp_path: Path, algorithm: str = "RS384", **server_auth: Any
           ) -> tuple[AuthSettings, bytes]:
    pem, jwk = _key_pair(algorithm, kid="ilp-key-1")
    key_file = tmp_path / "client.pem"
    key_file.write_bytes(pem)
    server.configure(auth={"mode": "oauth", "clients": [{"clientId": "ilp-etl", "jwks": {"keys": [jwk]}}],
                           **server_auth})
    return AuthSettings(kind="smart-backend", client_id="ilp-etl", private_key=SecretRef(file=key_file),
                        key_id="ilp-key-1", algorithm=algorithm), pem  # type: ignore[arg-type]


def _pull(server: FhirTestServer, auth: AuthSettings, root: Path, page_size: int = 100) -> Path:
    with RestSource(RestSettings(base_url=server.base, auth=auth, page_size=page_size, **FAST)) as source:
        return ingest(source, LandingZone(root, "aurora"), progress=LogProgress())


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_smart_backend_services_end_to_end(aurora: FhirTestServer, tmp_path: Path, algorithm: str) -> None:
    expected = server_versions(aurora.base)
    auth, _ = _smart(aurora, tmp_path, algorithm)
    assert landed_versions(_pull(aurora, auth, tmp_path)) == expected


def test_a_token_revoked_mid_run_is_renewed(aurora: FhirTestServer, tmp_path: Path) -> None:
    expected = server_versions(aurora.base)
    auth, _ = _smart(aurora, tmp_path)
    # Every 10th request revokes all tokens: more than the requests in flight, so a renewed token can be used
    # once before the next revocation (a client renews once per 401 and then fails: bad credentials stay bad).
    aurora.configure(faults={"every": 10, "kinds": ["expire"]})
    run = _pull(aurora, auth, tmp_path, page_size=20)
    assert landed_versions(run) == expected
    assert aurora.stats()["faultsInjected"] >= 3


def test_wrong_key_is_refused_with_a_clear_error(aurora: FhirTestServer, tmp_path: Path) -> None:
    auth, _ = _smart(aurora, tmp_path)
    other, _ = _key_pair("RS384", kid="ilp-key-1")
    (tmp_path / "client.pem").write_bytes(other)
    with pytest.raises(AuthenticationFailed, match=r"refused client 'ilp-etl'.*HTTP 401 invalid_client") as failure:
        _pull(aurora, auth, tmp_path)
    assert failure.value.exit_code == 4 and "/auth/token" in str(failure.value)


def test_wrong_audience_is_refused(aurora: FhirTestServer, tmp_path: Path) -> None:
    auth, _ = _smart(aurora, tmp_path)
    wrong = auth.model_copy(update={"audience": "https://elsewhere.example.org/token"})
    with pytest.raises(AuthenticationFailed, match="aud"):
        _pull(aurora, wrong, tmp_path)


def test_an_expired_token_gives_a_clear_error(aurora: FhirTestServer, tmp_path: Path) -> None:
    auth, _ = _smart(aurora, tmp_path, tokenLifetime=-5)
    with pytest.raises(AuthenticationFailed, match="HTTP 401 access token expired"):
        _pull(aurora, auth, tmp_path)


def test_client_secret_from_the_environment(aurora: FhirTestServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    expected = server_versions(aurora.base)
    aurora.configure(auth={"mode": "oauth", "clients": [{"clientId": "etl", "secret": "s3cr3t-from-env"}]})
    monkeypatch.setenv("ILP_TEST_SECRET", "s3cr3t-from-env")
    auth = AuthSettings(kind="client-credentials", client_id="etl", client_secret=SecretRef(env="ILP_TEST_SECRET"))
    assert landed_versions(_pull(aurora, auth, tmp_path / "ok")) == expected
    monkeypatch.setenv("ILP_TEST_SECRET", "wrong")
    with pytest.raises(AuthenticationFailed, match="wrong secret"):
        _pull(aurora, auth, tmp_path / "refused")
    monkeypatch.delenv("ILP_TEST_SECRET")
    with pytest.raises(ConfigError, match="ILP_TEST_SECRET is not set") as missing:
        _pull(aurora, auth, tmp_path / "missing")
    assert missing.value.exit_code == 2


def test_basic_and_bearer(aurora: FhirTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = server_versions(aurora.base)
    aurora.configure(auth={"mode": "basic", "username": "etl", "password": "pa55"})
    monkeypatch.setenv("ILP_TEST_PASSWORD", "pa55")
    basic = AuthSettings(kind="basic", username="etl", password=SecretRef(env="ILP_TEST_PASSWORD"))
    assert landed_versions(_pull(aurora, basic, tmp_path / "basic")) == expected
    aurora.configure(auth={"mode": "bearer", "token": "static-token-123"})
    token_file = tmp_path / "token"
    token_file.write_text("static-token-123\n")
    bearer = AuthSettings(kind="bearer", token=SecretRef(file=token_file))
    assert landed_versions(_pull(aurora, bearer, tmp_path / "bearer")) == expected
    with pytest.raises(AuthenticationFailed, match="HTTP 401"):
        _pull(aurora, basic, tmp_path / "wrong-kind")


def test_secrets_never_reach_logs_errors_or_manifests(aurora: FhirTestServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "very-secret-client-value"
    aurora.configure(auth={"mode": "oauth", "clients": [{"clientId": "etl", "secret": secret}]},
                     faults={"every": 10, "kinds": ["429", "expire"]})
    monkeypatch.setenv("ILP_TEST_SECRET", secret)
    auth = AuthSettings(kind="client-credentials", client_id="etl", client_secret=SecretRef(env="ILP_TEST_SECRET"))
    run = _pull(aurora, auth, tmp_path / "ok")
    smart, pem = _smart(aurora, tmp_path)
    (tmp_path / "client.pem").write_bytes(_key_pair("RS384", "ilp-key-1")[0])
    with pytest.raises(AuthenticationFailed) as failure:
        _pull(aurora, smart, tmp_path / "refused")
    written = "".join(p.read_text(encoding="utf-8") for p in run.parent.parent.parent.rglob("*.json"))
    key_body = pem.decode().splitlines()[1]
    for text in (caplog.text, str(failure.value), repr(auth), repr(smart), written):
        assert secret not in text and key_body not in text
    assert repr(SecretRef(env="X").describe()) == "'env:X'"
