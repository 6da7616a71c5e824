"""HTTPS endpoints: the harness's own HTTP client verifies certificates and says what to do."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.backends.base import GenerationRequest
from harness.backends.openai import OpenAIBackend
from harness.errors import BackendError

from .fake_openai import ANSWER, FakeOpenAI


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path):  # noqa: ANN201
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with FakeOpenAI(tls=ctx) as srv:
        yield srv, cert


def test_https_endpoint_with_a_trusted_certificate(tls_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    srv, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    b = OpenAIBackend(srv.url, "fake-model", max_retries=0)
    r = b.generate(GenerationRequest("s1", "how to bake bread", 16, 0.0, 1.0, (), 42))
    b.close()
    assert srv.url.startswith("https://") and r.error is None and r.text == ANSWER


def test_https_endpoint_with_an_unknown_certificate_is_refused_clearly(tls_server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    srv, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(BackendError, match="TLS certificate does not verify") as e:
        OpenAIBackend(srv.url, "fake-model", max_retries=0)
    assert "SSL_CERT_FILE" in (e.value.hint or "")
    assert not srv.requests  # nothing was sent over an unverified connection
