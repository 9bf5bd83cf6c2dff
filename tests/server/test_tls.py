"""TLS for ``loopml server`` and ``loopml serve``: a private CA and a certificate made here, real processes.

Clients trust the CA through ``LOOPML_TLS_CA_FILE`` (the REST store) or an
explicit ``verify=`` (httpx); without it the handshake is refused, as it
should be for a certificate no public CA signed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from loopml.errors import StoreError
from loopml.store.rest import open_rest_store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1 and localhost: ``(ca.pem, cert.pem, key.pem)``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("loopml test CA"))
        .issuer_name(_name("loopml test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    os.chmod(paths[2], 0o600)
    return paths


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def _trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _start(command: list[str], url: str, ca: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "loopml.cli.main", *command, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, verify=_trusting(ca), timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited with {process.returncode} before answering over TLS")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{command[0]} did not answer {url} within 60 s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def tls_server(certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ca, cert, key = certificates
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    command = ["server", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    process = _start(command, f"{url}/api/v1/health", ca, tmp_path_factory.mktemp("home"))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_rest_store_talks_to_an_https_server_it_trusts_through_loopml_tls_ca_file(
    tls_server: str, certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.tracking.client import TrackingClient

    ca, _, _ = certificates
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("LOOPML_TLS_CA_FILE", raising=False)
    untrusting = open_rest_store(tls_server, "")
    try:
        with pytest.raises(StoreError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.artifacts.exists("0" * 64)
    finally:
        untrusting.close()
    with pytest.raises(httpx.TransportError):  # plain http on the TLS port is not answered either
        httpx.get(tls_server.replace("https", "http") + "/api/v1/health", timeout=5)

    monkeypatch.setenv("LOOPML_TLS_CA_FILE", str(ca))
    client = TrackingClient(open_rest_store(tls_server, ""))
    try:
        run = client.create_run("over-tls", capture=False)
        client.log_artifact_bytes(run.run_id, {"notes.txt": b"sent encrypted in transit"})
        assert client.read_artifact(run.run_id, "notes.txt") == b"sent encrypted in transit"
    finally:
        client.close()


def test_the_standard_ssl_cert_file_is_honoured_too(tls_server: str, certificates, monkeypatch) -> None:
    ca, _, _ = certificates
    monkeypatch.delenv("LOOPML_TLS_CA_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    store = open_rest_store(tls_server, "")
    try:
        assert store.artifacts.exists("0" * 64) is False
    finally:
        store.close()


def test_loopml_serve_answers_over_tls(certificates, tmp_path: Path) -> None:
    ca, cert, key = certificates
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    command = ["serve", "--all", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    process = _start(command, f"{url}/healthz", ca, tmp_path / "home")
    try:
        answer = httpx.get(f"{url}/v1/models", verify=_trusting(ca), timeout=60)
        assert answer.status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/healthz", timeout=5)  # the system's CAs do not vouch for it
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("command", ["server", "serve"])
def test_a_certificate_without_its_key_or_an_unreadable_file_is_refused_before_start(
    command: str, certificates, tmp_path: Path
) -> None:
    from loopml.cli.main import app

    _, cert, key = certificates
    alone = CliRunner().invoke(app, [command, "--ssl-certfile", str(cert)])
    assert alone.exit_code != 0 and "--ssl-keyfile" in alone.output
    missing = tmp_path / "absent.pem"
    result = CliRunner().invoke(app, [command, "--ssl-certfile", str(missing), "--ssl-keyfile", str(key)])
    assert result.exit_code != 0 and "--ssl-certfile" in result.output
    assert str(missing) not in result.output  # no file path in the message


def test_an_unreadable_ca_file_is_a_clear_error_without_its_path(tmp_path: Path, monkeypatch) -> None:
    from loopml.errors import InvalidValueError

    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("LOOPML_TLS_CA_FILE", str(missing))
    with pytest.raises(InvalidValueError, match="LOOPML_TLS_CA_FILE") as caught:
        open_rest_store("https://127.0.0.1:1", "")
    assert str(missing) not in str(caught.value)
