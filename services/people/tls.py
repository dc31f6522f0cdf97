"""HTTPS for the LAN: a configured certificate, or a self-signed one made for this machine's names.

Passkeys need HTTPS on a host name (browsers refuse WebAuthn on IP addresses and on plain HTTP
except localhost). The self-signed certificate names this machine (`host`, `host.local`, its
FQDN, localhost) and its addresses; it is its own CA (basicConstraints CA:TRUE) so phones and
headsets can be told to trust it (README: "Passkeys on the LAN").
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.errors import ConfigError

log = logging.getLogger(__name__)

VALID_DAYS = 825  # the longest validity Apple devices accept for a trusted server certificate
RENEW_DAYS = 30


def machine_names() -> list[str]:
    """Return the DNS names this machine answers to on the LAN."""
    host = socket.gethostname().lower()
    names = [host, host.split(".")[0] + ".local", "localhost"]
    try:
        names.append(socket.getfqdn().lower())
    except OSError:
        pass
    return sorted({n for n in names if n})


def machine_addresses() -> list[str]:
    """Return loopback and this machine's LAN address (the one a default route would use)."""
    found = ["127.0.0.1", "::1"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
            found.append(s.getsockname()[0])
    except OSError:
        pass
    return found


def cert_files(
    tls: str, cert: Path | None, key: Path | None, data_dir: Path
) -> tuple[Path, Path] | None:
    """Return (certificate, key) to serve HTTPS with, per LVS_TLS; None for plain HTTP."""
    if tls == "off":
        return None
    if tls == "on":
        if cert is None or key is None:
            raise ConfigError("LVS_TLS=on needs LVS_TLS_CERT and LVS_TLS_KEY (PEM files)")
        for path in (cert, key):
            if not path.is_file():
                raise ConfigError(f"LVS_TLS: {path} does not exist")
        return cert, key
    return self_signed(data_dir, machine_names(), machine_addresses())


def self_signed(data_dir: Path, names: list[str], addresses: list[str]) -> tuple[Path, Path]:
    """Return the self-signed pair in the data dir, made (again) if missing, expiring or for other names."""
    cert_path, key_path = data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"
    if cert_path.is_file() and key_path.is_file() and _still_good(cert_path, names, addresses):
        return cert_path, key_path
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Local Video Server"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("made a self-signed certificate for %s in %s", ", ".join(names), cert_path)
    return cert_path, key_path


def _still_good(cert_path: Path, names: list[str], addresses: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    have = set(alt.get_values_for_type(x509.DNSName)) | {
        str(a) for a in alt.get_values_for_type(x509.IPAddress)
    }
    return left.days > RENEW_DAYS and set(names) | set(addresses) <= have
