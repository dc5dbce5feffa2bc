"""TLS against a real TLS server on localhost: verified by default, a self-signed server refused unless its CA is
configured, and the refusal says so at once instead of being retried as a network failure."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors import AuthSettings, LandingZone, RestSettings, RestSource, SecretRef, ingest
from connectors.progress import LogProgress
from demo.fhir_server import FhirTestServer, ServerTls
from foundation.errors import SourceUnreachable
from tests.landing_helpers import landed_versions

Consortium = tuple[Path, dict[str, Any]]


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 issuer_key: ec.EllipticCurvePrivateKey | None) -> x509.Certificate:
    """A certificate for 127.0.0.1: a CA's, self-signed, when there is no issuer, else one signed by the issuer."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    if issuer is None:
        builder = builder.issuer_name(name).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.issuer_name(issuer.subject)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(folder: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Path:
    (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _authority(folder: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(f"{name} hospital CA", key, None, None)
    return _write(folder, name, key, cert), cert, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, demo_consortium: Consortium
               ) -> Iterator[tuple[FhirTestServer, Path, Path]]:
    """A FHIR server with a certificate from the hospital's own CA; (server, that CA, some other CA)."""
    folder = tmp_path_factory.mktemp("tls")
    hospital_ca, ca_cert, ca_key = _authority(folder, "hospital")
    other_ca = _authority(folder, "other")[0]
    key = ec.generate_private_key(ec.SECP256R1())
    cert_path = _write(folder, "server", key, _certificate("fhir.hospital.example", key, ca_cert, ca_key))
    with FhirTestServer(ServerTls(cert_path, folder / "server.key", hospital_ca)) as server:
        server.load_centre(demo_consortium[0] / "aurora")
        yield server, hospital_ca, other_ca


def _pull(server: FhirTestServer, root: Path, ca: Path | None = None, auth: AuthSettings | None = None) -> Path:
    settings = RestSettings(base_url=server.base, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=20,
                            ca_bundle=ca, auth=auth or AuthSettings())
    with RestSource(settings) as source:
        return ingest(source, LandingZone(root, "aurora"), progress=LogProgress())


def test_the_server_is_https_and_its_hospital_ca_makes_it_trusted(tls_server: tuple[FhirTestServer, Path, Path],
                                                                   tmp_path: Path) -> None:
    server, hospital_ca, _ = tls_server
    assert server.base.startswith("https://127.0.0.1:")
    landed = landed_versions(_pull(server, tmp_path, hospital_ca))
    assert sum(len(ids) for ids in landed.values()) > 100
    assert len(landed["Patient"]) == len(landed_versions(_pull(server, tmp_path / "again", hospital_ca))["Patient"])


@pytest.mark.parametrize("trusted", ["nothing configured", "another CA"])
def test_an_untrusted_certificate_is_refused_at_once_with_what_to_do(tls_server: tuple[FhirTestServer, Path, Path],
                                                                     tmp_path: Path, trusted: str) -> None:
    server, _, other_ca = tls_server
    before = server.stats()["requests"]
    with pytest.raises(SourceUnreachable, match=r"TLS certificate is not trusted .*ca_bundle") as refusal:
        _pull(server, tmp_path, other_ca if trusted == "another CA" else None)
    assert "attempts" not in str(refusal.value)  # refused, not retried as a flaky network
    assert server.stats()["requests"] == before + 1  # nothing reached the server but our stats call
    assert not list((tmp_path / "landing").glob("*/run=*"))


def test_credentials_are_never_sent_to_an_untrusted_server(tls_server: tuple[FhirTestServer, Path, Path],
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token endpoint is on the same untrusted host: the client secret must not be posted to it."""
    server, _, _ = tls_server
    server.configure(auth={"mode": "oauth", "clients": [{"clientId": "etl", "secret": "tls-test-secret"}]})
    monkeypatch.setenv("ILP_TLS_SECRET", "tls-test-secret")
    auth = AuthSettings(kind="client-credentials", client_id="etl", client_secret=SecretRef(env="ILP_TLS_SECRET"),
                        token_url=server.root + "/auth/token")
    try:
        with pytest.raises(SourceUnreachable, match="not trusted"):
            _pull(server, tmp_path, auth=auth)
        assert server.stats()["tokensIssued"] == []
    finally:
        server.configure(auth={"mode": "none"})


def test_a_self_signed_server_is_refused_unless_its_own_certificate_is_configured(tmp_path: Path,
                                                                                 demo_consortium: Consortium) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _write(tmp_path, "self-signed", key, _certificate("fhir.self-signed.example", key, None, None))
    with FhirTestServer(ServerTls(cert, tmp_path / "self-signed.key", cert)) as server:
        server.load_centre(demo_consortium[0] / "aurora")
        with pytest.raises(SourceUnreachable, match=r"not trusted \(self.signed certificate\)"):
            _pull(server, tmp_path / "refused")
        assert len(landed_versions(_pull(server, tmp_path / "trusted", cert))["Patient"]) > 0
