"""Test certificates for TLS clusters, made with ``cryptography``.

:func:`make_ca` makes a self-signed certificate authority; :func:`make_cert`
makes a certificate it signs, valid for ``127.0.0.1`` and ``localhost``, usable
both as a TLS server (scheduler, worker) and a TLS client (worker, client).
Keys are EC P-256 (fast to make, accepted by Python's ``ssl`` and Dask) and are
written unencrypted, as PEM, next to their certificate.

Examples
--------
>>> ca = make_ca(tmp_dir, "test-ca")                     # doctest: +SKIP
>>> cert, key = make_cert(tmp_dir, "node", ca)          # doctest: +SKIP
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CA:
    """A certificate authority: its PEM certificate file, and what signs with it."""

    cert_file: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Any, filename: str, data: bytes) -> str:
    path = os.path.join(str(directory), filename)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _write_key(directory: Any, filename: str, key: ec.EllipticCurvePrivateKey) -> str:
    return _write(directory, filename, key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clock skew between processes
        .not_valid_after(now + VALID_FOR)
    )


def make_ca(directory: Any, name: str) -> CA:
    """A self-signed CA (``basicConstraints CA=True``), its certificate in ``NAME.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (
        _builder(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = _write(directory, f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return CA(cert_file=path, cert=cert, key=key)


def make_cert(directory: Any, name: str, ca: CA) -> tuple[str, str]:
    """A certificate signed by ``ca`` for 127.0.0.1 / localhost: ``(cert file, key file)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(name), ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_file = _write(directory, f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, _write_key(directory, f"{name}-key.pem", key)
