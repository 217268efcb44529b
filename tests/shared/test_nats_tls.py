"""`nats.tls` (ca, cert, key) with `nats.user`/`password` against a real nats-server that
requires TLS, a client certificate and a password: a Bus configured from whoosh.yaml
gets in; one without the client certificate does not."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import free_port, nats_server_binary, wait_for_port
from whoosh_shared.contract.config import parse_config_text
from whoosh_shared.runtime import nats_auth
from whoosh_shared.runtime.bus import Bus, BusError


def issue(name: str, signer=None, signer_key=None, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.subject if signer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=signer is None, path_length=None), critical=True)
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer_key or key, hashes.SHA256()), key


def write(path: Path, cert, key) -> tuple[str, str]:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    return str(path.with_suffix(".pem")), str(path.with_suffix(".key"))


async def test_a_bus_connects_with_tls_a_client_certificate_and_a_password(
    tmp_path: Path,
) -> None:
    ca, ca_key = issue("whoosh test CA")
    ca_file, _ = write(tmp_path / "ca", ca, ca_key)
    server_cert, server_key = write(tmp_path / "server", *issue("nats", ca, ca_key, server=True))
    client_cert, client_key = write(tmp_path / "client", *issue("executor", ca, ca_key))
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f'port: {port}\nhost: 127.0.0.1\n'
        f'tls {{ cert_file: "{server_cert}", key_file: "{server_key}", '
        f'ca_file: "{ca_file}", verify: true }}\n'
        'authorization { user: executor, password: "s3cret" }\n'
    )  # fmt: skip
    server = subprocess.Popen([nats_server_binary(), "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, timeout=10)
        url = f"tls://127.0.0.1:{port}"
        config = parse_config_text(
            f"nats:\n  user: executor\n  password: s3cret\n"
            f"  tls: {{ca: {ca_file}, cert: {client_cert}, key: {client_key}}}\n"
        )
        bus = Bus(url, "test-tls", nats_auth.for_config(config, url))
        await bus.connect(timeout=5)
        await bus.nc.flush(timeout=5)
        await bus.close()
        no_cert = parse_config_text(
            f"nats:\n  user: executor\n  password: s3cret\n  tls: {{ca: {ca_file}}}\n"
        )
        refused = Bus(url, "test-tls-no-cert", nats_auth.for_config(no_cert, url))
        with pytest.raises(BusError):
            await refused.connect(timeout=3)
    finally:
        server.terminate()
        server.wait(10)
