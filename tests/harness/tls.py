"""Throwaway TLS material for loopback servers: a private CA and one server certificate it signed.

Generated at run time (never stored in the repository) with the `cryptography` package. RSA 2048 rather than EC keys
because every server we start (nginx, FTP daemons, Java/Keycloak) and every client accepts it without extra options.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files: `ca` is what clients trust, `cert` + `key` are what the server presents."""

    ca: Path
    cert: Path
    key: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "auxip test harness"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hostnames: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, days: int) -> x509.CertificateBuilder:
    # Back-dated by a day so a clock skew between processes never makes the certificate "not yet valid".
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_certificate(key: rsa.RSAPrivateKey, days: int) -> x509.Certificate:
    name = _name("auxip test CA")
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: rsa.RSAPrivateKey, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, hostnames: Sequence[str], days: int
) -> x509.Certificate:
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    # Python 3.13+ clients verify with VERIFY_X509_STRICT, which rejects a leaf without an authority key identifier.
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        _builder(_name(hostnames[0]), ca.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(_san(hostnames), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write_pem(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate the CA of the same call signed (`clientAuth`); `key` is unencrypted PKCS#8."""

    cert: Path
    key: Path


def _client_certificate(
    key: rsa.RSAPrivateKey, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, common_name: str,
    organizations: Sequence[str], days: int,
) -> x509.Certificate:  # fmt: skip
    # Kubernetes maps the subject's O= entries to groups (system:masters) and CN= to the user name.
    subject = x509.Name(
        [
            *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        _builder(subject, ca.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def make_ca_server_and_clients(
    directory: Path,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    clients: Mapping[str, Sequence[str]] | None = None,
    days: int = 30,
) -> tuple[TlsMaterial, dict[str, ClientCertificate]]:
    """ca.pem, cert.pem and key.pem as `make_ca_and_server_cert`, plus `<name>.pem` and `<name>-key.pem` per entry
    of `clients` (common name -> organizations), all signed by the same CA, whose key is not kept."""
    if not hostnames:
        raise ValueError("at least one hostname is needed for the server certificate")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, server_key = _new_key(), _new_key()
    ca = _ca_certificate(ca_key, days)
    server = _server_certificate(server_key, ca, ca_key, hostnames, days)
    material = TlsMaterial(
        ca=_write_pem(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        cert=_write_pem(directory / "cert.pem", server.public_bytes(serialization.Encoding.PEM)),
        key=_write_pem(directory / "key.pem", _key_pem(server_key), 0o600),
    )
    issued = {}
    for name, organizations in (clients or {}).items():
        client_key = _new_key()
        cert = _client_certificate(client_key, ca, ca_key, name, organizations, days)
        issued[name] = ClientCertificate(
            cert=_write_pem(directory / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
            key=_write_pem(directory / f"{name}-key.pem", _key_pem(client_key), 0o600),
        )
    return material, issued


def make_ca_and_server_cert(
    directory: Path, hostnames: Sequence[str] = DEFAULT_HOSTNAMES, days: int = 30
) -> TlsMaterial:
    """Write ca.pem, cert.pem and key.pem (unencrypted PKCS#8, readable by Java too) into `directory`.

    `hostnames` become the subjectAltName entries: IP literals as iPAddress, the rest as dNSName.
    """
    return make_ca_server_and_clients(directory, hostnames, None, days)[0]
