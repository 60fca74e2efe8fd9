"""The admission webhook's own CA and serving certificate (admission/tls.py), without an API:
what a fresh Secret holds, when it must be renewed and what a renewal keeps."""

from __future__ import annotations

import datetime

from cryptography import x509

from devserver_operator.admission.tls import (
    CA_CERT,
    CA_KEY,
    RENEW_BEFORE,
    SERVING_VALIDITY,
    TLS_CERT,
    TLS_KEY,
    new_secret_data,
    renewal_reason,
    renewed_secret_data,
    service_dns_names,
)

NAMES = service_dns_names("devserver-operator-admission", "devserver-system", "cluster.local")
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


def sans(data: dict[str, bytes]) -> list[str]:
    certificate = x509.load_pem_x509_certificate(data[TLS_CERT])
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return extension.value.get_values_for_type(x509.DNSName)


def test_the_service_names_are_the_ones_the_api_server_uses() -> None:
    assert NAMES == [
        "devserver-operator-admission.devserver-system.svc",
        "devserver-operator-admission.devserver-system.svc.cluster.local",
    ]


def test_a_fresh_secret_serves_the_service_names_for_a_year_from_its_own_ca() -> None:
    data = new_secret_data(NAMES, NOW)
    assert set(data) == {CA_CERT, CA_KEY, TLS_CERT, TLS_KEY}
    assert renewal_reason(data, NAMES, NOW) is None
    assert sans(data) == NAMES
    certificate = x509.load_pem_x509_certificate(data[TLS_CERT])
    (ca,) = x509.load_pem_x509_certificates(data[CA_CERT])
    certificate.verify_directly_issued_by(ca)
    assert certificate.not_valid_after_utc - NOW == SERVING_VALIDITY
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_renewal_is_due_close_to_expiry_and_not_before() -> None:
    data = new_secret_data(NAMES, NOW)
    expiry = NOW + SERVING_VALIDITY
    assert renewal_reason(data, NAMES, expiry - RENEW_BEFORE - datetime.timedelta(hours=1)) is None
    reason = renewal_reason(data, NAMES, expiry - RENEW_BEFORE + datetime.timedelta(hours=1))
    assert reason is not None and "expires in 29 days" in reason
    assert "expires in 0 days" in (renewal_reason(data, NAMES, expiry) or "")


def test_renewal_is_due_for_other_names_a_foreign_key_or_missing_parts() -> None:
    data = new_secret_data(NAMES, NOW)
    other = new_secret_data(NAMES, NOW)
    assert "not" in (renewal_reason(data, ["other.devserver-system.svc"], NOW) or "")
    assert "serving key" in (renewal_reason({**data, TLS_KEY: other[TLS_KEY]}, NAMES, NOW) or "")
    assert "CA key" in (renewal_reason({**data, CA_KEY: other[CA_KEY]}, NAMES, NOW) or "")
    foreign_ca = {**data, CA_CERT: other[CA_CERT], CA_KEY: other[CA_KEY]}
    assert "signed" in (renewal_reason(foreign_ca, NAMES, NOW) or "")
    assert "missing tls.key" in (renewal_reason({**data, TLS_KEY: b""}, NAMES, NOW) or "")
    assert "unreadable" in (renewal_reason({**data, TLS_CERT: b"junk"}, NAMES, NOW) or "")


def test_a_renewal_keeps_the_ca_so_the_ca_bundle_stays() -> None:
    data = new_secret_data(NAMES, NOW)
    later = NOW + SERVING_VALIDITY - datetime.timedelta(days=10)
    renewed = renewed_secret_data(data, NAMES, later)
    assert renewed[CA_CERT] == data[CA_CERT] and renewed[CA_KEY] == data[CA_KEY]
    assert renewed[TLS_CERT] != data[TLS_CERT]
    assert renewal_reason(renewed, NAMES, later) is None
    assert renewal_reason(renewed, NAMES, later + SERVING_VALIDITY - RENEW_BEFORE * 2) is None


def test_a_ca_close_to_its_end_is_replaced_and_stays_in_the_bundle_until_it_expires() -> None:
    data = new_secret_data(NAMES, NOW)
    (old_ca,) = x509.load_pem_x509_certificates(data[CA_CERT])
    late = old_ca.not_valid_after_utc - SERVING_VALIDITY  # the CA would die before the cert
    renewed = renewed_secret_data(data, NAMES, late)
    new_ca, kept = x509.load_pem_x509_certificates(renewed[CA_CERT])
    assert kept == old_ca and new_ca != old_ca
    assert renewal_reason(renewed, NAMES, late) is None
    # Once the old CA has expired, the next new CA no longer carries it.
    after = renewed_secret_data(data, NAMES, old_ca.not_valid_after_utc + datetime.timedelta(1))
    assert len(x509.load_pem_x509_certificates(after[CA_CERT])) == 1


def test_an_unreadable_secret_gets_a_fresh_ca() -> None:
    renewed = renewed_secret_data({TLS_CERT: b"junk"}, NAMES, NOW)
    assert renewal_reason(renewed, NAMES, NOW) is None
