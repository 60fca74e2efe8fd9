"""The admission webhook's own CA and serving certificate, kept in one Secret of the operator's
namespace, so that the shipped installs need neither cert-manager nor a certificate rendered
by Helm (which would change on every render: diff noise under GitOps).

Every replica, at start and then on a timer (server.py):

- reads the Secret; when it is missing, creates a CA and a serving certificate for the
  webhook Service's DNS names and creates the Secret. Two replicas starting at once both try;
  the API server admits one create and answers the other 409, and that one reads the winner's.
- renews it when the serving certificate has less than RENEW_BEFORE left, names other DNS
  names, or does not match its key or CA. The update carries the resourceVersion read, so of
  two replicas renewing at once one wins; the other (409) reads the winner's.
- The CA lives ten years and is kept across renewals, so the caBundle stays the same. When it
  must be replaced too, the old CA stays in ``ca.crt`` (the caBundle) next to the new one until
  it expires: replicas that still serve the previous certificate stay trusted meanwhile.

Keys are ECDSA P-256. Nothing here is written to disk; server.py loads the PEM into its TLS
context through a private temporary directory that it removes at once.
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devserver_operator.kube.client import KubeClient
from devserver_operator.kube.errors import ConflictError
from devserver_operator.kube.resources import resource_for

logger = logging.getLogger(__name__)

CA_VALIDITY: Final = datetime.timedelta(days=3650)
SERVING_VALIDITY: Final = datetime.timedelta(days=365)
RENEW_BEFORE: Final = datetime.timedelta(days=30)
"""A serving certificate with less than this left is replaced (checked every few minutes)."""
BACKDATE: Final = datetime.timedelta(minutes=5)
"""Tolerates a little clock skew between the operator and the API server."""
ATTEMPTS: Final = 4
"""Reads and writes of the Secret before giving up (each lost race is one)."""

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
SECRET_TYPE = "kubernetes.io/tls"  # noqa: S105 - a type, not a password
CA_COMMON_NAME = "devserver-operator-admission-ca"
SECRET_LABELS: Final = {
    "app.kubernetes.io/name": "devserver-operator",
    "app.kubernetes.io/component": "admission-tls",
    "app.kubernetes.io/managed-by": "devserver-operator",
}


@dataclass(frozen=True)
class ServingMaterial:
    """What the webhook serves with, and the caBundle the API server needs to trust it."""

    ca_bundle: bytes
    certificate: bytes
    key: bytes


def service_dns_names(service: str, namespace: str, cluster_domain: str) -> list[str]:
    """The names the API server may use for a webhook behind ``service`` (it uses the first)."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.{cluster_domain}"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def new_ca(
    now: datetime.datetime, validity: datetime.timedelta = CA_VALIDITY
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def issue_serving(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    dns_names: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta = SERVING_VALIDITY,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + validity, ca_certificate.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def new_secret_data(
    dns_names: Sequence[str], now: datetime.datetime | None = None
) -> dict[str, bytes]:
    """A fresh CA and a serving certificate for ``dns_names``: the Secret's data."""
    now = now or _now()
    ca_key, ca_certificate = new_ca(now)
    key, certificate = issue_serving(ca_key, ca_certificate, dns_names, now)
    return {
        CA_CERT: _pem(ca_certificate),
        CA_KEY: _key_pem(ca_key),
        TLS_CERT: _pem(certificate),
        TLS_KEY: _key_pem(key),
    }


def _load(data: Mapping[str, bytes]) -> tuple[
    list[x509.Certificate], ec.EllipticCurvePrivateKey, x509.Certificate, Any
]:  # fmt: skip
    """CAs of the bundle (issuing one first), CA key, serving certificate, serving key."""
    cas = x509.load_pem_x509_certificates(data[CA_CERT])
    ca_key = serialization.load_pem_private_key(data[CA_KEY], password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    certificate = x509.load_pem_x509_certificate(data[TLS_CERT])
    key = serialization.load_pem_private_key(data[TLS_KEY], password=None)
    return cas, ca_key, certificate, key


def _public(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def renewal_reason(
    data: Mapping[str, bytes], dns_names: Sequence[str], now: datetime.datetime | None = None
) -> str | None:
    """Why the Secret's data must be replaced; None when it serves as it is."""
    now = now or _now()
    missing = [k for k in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY) if not data.get(k)]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        cas, ca_key, certificate, key = _load(data)
    except ValueError as error:
        return f"unreadable: {error}"
    if not cas or _public(ca_key) != _public_of_certificate(cas[0]):
        return "the CA key does not match the CA certificate"
    if _public(key) != _public_of_certificate(certificate):
        return "the serving key does not match the serving certificate"
    try:
        certificate.verify_directly_issued_by(cas[0])
    except (ValueError, TypeError, InvalidSignature):
        return "the serving certificate is not signed by the CA"
    try:
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if sorted(names) != sorted(dns_names):
        return f"it is for {sorted(names)}, not {sorted(dns_names)}"
    left = certificate.not_valid_after_utc - now
    if left < RENEW_BEFORE:
        return f"the serving certificate expires in {max(left.days, 0)} days"
    if certificate.not_valid_before_utc > now + BACKDATE:
        return "the serving certificate is not valid yet"
    return None


def _public_of_certificate(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def renewed_secret_data(
    data: Mapping[str, bytes], dns_names: Sequence[str], now: datetime.datetime | None = None
) -> dict[str, bytes]:
    """A new serving certificate, from the same CA while that CA outlives it (the caBundle
    then stays as it is); otherwise from a new CA, with the old one kept in the bundle until
    it expires."""
    now = now or _now()
    try:
        cas, ca_key, _, _ = _load(data)
        ca_certificate = cas[0]
        usable = (
            _public(ca_key) == _public_of_certificate(ca_certificate)
            and ca_certificate.not_valid_after_utc - now > SERVING_VALIDITY + RENEW_BEFORE
        )
    except (KeyError, ValueError):
        cas, usable = [], False
    if not usable:
        fresh = new_secret_data(dns_names, now)
        still_valid = [ca for ca in cas if ca.not_valid_after_utc > now]
        fresh[CA_CERT] += b"".join(_pem(ca) for ca in still_valid[:1])
        return fresh
    key, certificate = issue_serving(ca_key, ca_certificate, dns_names, now)
    return {
        CA_CERT: data[CA_CERT],
        CA_KEY: data[CA_KEY],
        TLS_CERT: _pem(certificate),
        TLS_KEY: _key_pem(key),
    }


def _decode(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def _encode(data: Mapping[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


def _material(data: Mapping[str, bytes]) -> ServingMaterial:
    return ServingMaterial(ca_bundle=data[CA_CERT], certificate=data[TLS_CERT], key=data[TLS_KEY])


async def ensure_serving_secret(
    kube: KubeClient,
    namespace: str,
    name: str,
    dns_names: Sequence[str],
    *,
    now: datetime.datetime | None = None,
) -> ServingMaterial:
    """The serving material in Secret ``namespace/name``, created or renewed when needed."""
    if not dns_names:
        raise ValueError("the webhook's serving certificate needs at least one DNS name")
    for _ in range(ATTEMPTS):
        live = await kube.get("v1", "Secret", name, namespace)
        if live is None:
            data = new_secret_data(dns_names, now)
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(SECRET_LABELS)},
                "type": SECRET_TYPE,
                "data": _encode(data),
            }
            try:
                await kube.create(secret)
            except ConflictError:
                logger.info("Secret %s/%s: another replica created it first", namespace, name)
                continue
            logger.info("admission webhook CA and certificate created: %s/%s", namespace, name)
            return _material(data)
        data = _decode(live)
        reason = renewal_reason(data, dns_names, now)
        if reason is None:
            return _material(data)
        logger.info("renewing the webhook certificate in %s/%s: %s", namespace, name, reason)
        renewed = renewed_secret_data(data, dns_names, now)
        # Kept: the type (immutable), metadata and resourceVersion (a concurrent write -> 409).
        body = {**live, "data": _encode(renewed)}
        try:
            await kube.raw("PUT", resource_for("v1", "Secret").item(name, namespace), body)
        except ConflictError:
            logger.info("Secret %s/%s was renewed by another replica: using it", namespace, name)
            continue
        return _material(renewed)
    raise RuntimeError(f"Secret {namespace}/{name} kept changing: gave up after {ATTEMPTS} tries")
