"""Throw-away PKI for a local control plane: a CA, the apiserver's serving certificate,
client certificates that carry a Kubernetes identity, and the service-account signing key.

Keys are ECDSA P-256: Kubernetes accepts them everywhere it accepts RSA, and generating
one takes microseconds instead of the tens of milliseconds of an RSA-2048 key, which
matters when tests mint identities on the fly.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for any test session or dev loop, short enough that a leaked CA is useless.
VALIDITY: Final = datetime.timedelta(days=7)
# Tolerates a little clock skew between "now" here and in the apiserver.
BACKDATE: Final = datetime.timedelta(minutes=5)

APISERVER_DNS_NAMES: Final = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class KeyAndCertificate:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.key)

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.certificate_pem)
        write_private(key_path, self.key_pem)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only."""
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(data)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - BACKDATE, now + VALIDITY


def generate_ca(common_name: str = "devserver-local-ca") -> KeyAndCertificate:
    key = new_key()
    not_before, not_after = _validity()
    subject = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyAndCertificate(key, certificate)


def _issue(
    ca: KeyAndCertificate,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName] = (),
) -> KeyAndCertificate:
    key = new_key()
    not_before, not_after = _validity()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return KeyAndCertificate(key, builder.sign(ca.key, hashes.SHA256()))


def issue_serving_certificate(
    ca: KeyAndCertificate,
    *,
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    dns_names: Sequence[str] = APISERVER_DNS_NAMES,
    service_ip: str | None = None,
) -> KeyAndCertificate:
    """The apiserver's TLS certificate.

    ``service_ip`` is the first address of the service CIDR: in-cluster clients reach
    the apiserver through the ``kubernetes`` Service at that address and verify it.
    """
    ips = [*ip_addresses, *([service_ip] if service_ip else [])]
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return _issue(ca, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans)


def issue_client_certificate(
    ca: KeyAndCertificate, user: str, groups: Sequence[str] = ()
) -> KeyAndCertificate:
    """A client certificate that the apiserver maps to ``user`` (CN) in ``groups`` (O)."""
    return _issue(ca, _name(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH)


@dataclass(frozen=True)
class ControlPlanePki:
    """Everything a control plane starts with, written as files under ``directory``."""

    directory: Path
    ca: KeyAndCertificate
    admin: KeyAndCertificate

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def admin_cert_path(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key_path(self) -> Path:
        return self.directory / "admin.key"

    @property
    def serving_cert_path(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key_path(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def service_account_key_path(self) -> Path:
        """Signs ServiceAccount tokens (kube-apiserver, kube-controller-manager)."""
        return self.directory / "sa.key"

    @property
    def service_account_public_key_path(self) -> Path:
        """Verifies ServiceAccount tokens (kube-apiserver)."""
        return self.directory / "sa.pub"


def create_control_plane_pki(
    directory: Path, *, admin_user: str, service_ip: str | None = None
) -> ControlPlanePki:
    """A fresh CA, the apiserver's serving certificate, an admin client certificate
    (group system:masters) and the service-account signing key pair, in ``directory``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = generate_ca()
    admin = issue_client_certificate(ca, admin_user, ["system:masters"])
    pki = ControlPlanePki(directory=directory, ca=ca, admin=admin)
    ca.write(pki.ca_cert_path, directory / "ca.key")
    admin.write(pki.admin_cert_path, pki.admin_key_path)
    issue_serving_certificate(ca, service_ip=service_ip).write(
        pki.serving_cert_path, pki.serving_key_path
    )
    signing_key = new_key()
    write_private(pki.service_account_key_path, private_key_pem(signing_key))
    pki.service_account_public_key_path.write_bytes(public_key_pem(signing_key))
    return pki
