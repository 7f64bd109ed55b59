"""TLS-04: program-made keys and certificates meet the floor."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import tlskeys

from .conftest import UNKNOWN, run_policy

KEYS = tlskeys.tls_private_key_strength
CERTS = tlskeys.tls_cert_validity
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"
LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"


@pytest.mark.parametrize("props", [
    {"algorithm": "ECDSA", "ecdsaCurve": "P256"},
    {"algorithm": "ECDSA", "ecdsaCurve": "P384"},
    {"algorithm": "ECDSA", "ecdsaCurve": "P521"},
    {"algorithm": "ED25519"},
    {"algorithm": "RSA", "rsaBits": 3072},
    {"algorithm": "RSA", "rsaBits": 4096},
    {"algorithm": "RSA", "rsaBits": "4096"},
    {"algorithm": "RSA", "rsaBits": 4096.0},
    {"algorithm": "ecdsa", "ecdsaCurve": "p256"},
], ids=str)
def test_strong_keys_pass(props):
    assert run_policy(KEYS, PRIVATE_KEY, props) == []


def test_rsa_2048_is_a_violation():
    [message] = run_policy(KEYS, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 2048})
    assert "rsaBits 2048" in message and "3072" in message


def test_rsa_bits_as_string_below_floor_is_a_violation():
    assert run_policy(KEYS, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": "2048"})


def test_rsa_without_rsa_bits_is_the_2048_default_and_a_violation():
    [message] = run_policy(KEYS, PRIVATE_KEY, {"algorithm": "RSA"})
    assert "not set" in message and "2048" in message


def test_ecdsa_p224_is_a_violation():
    [message] = run_policy(KEYS, PRIVATE_KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P224"})
    assert "P224" in message


def test_ecdsa_without_curve_is_the_p224_default_and_a_violation():
    [message] = run_policy(KEYS, PRIVATE_KEY, {"algorithm": "ECDSA"})
    assert "P224" in message


def test_unknown_algorithm_is_a_violation():
    assert run_policy(KEYS, PRIVATE_KEY, {"algorithm": "DSA"})


def test_unknown_rsa_bits_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(KEYS, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": UNKNOWN})


def test_minimum_rsa_bits_comes_from_policy_config():
    assert run_policy(KEYS, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 3072}, config={"minimumRsaBits": 4096})


def test_bad_minimum_rsa_bits_config_is_reported_naming_the_key():
    [message] = run_policy(KEYS, PRIVATE_KEY, {"algorithm": "ED25519"}, config={"minimumRsaBits": "lots"})
    assert "minimumRsaBits" in message


def good_cert():
    return {"privateKeyPem": "(pem)", "validityPeriodHours": 2160, "earlyRenewalHours": 720,
            "allowedUses": ["digital_signature", "server_auth"], "dnsNames": ["acme.internal"]}


@pytest.mark.parametrize("resource_type", [SELF_SIGNED, LOCALLY_SIGNED])
def test_90_day_cert_with_early_renewal_passes(resource_type):
    assert run_policy(CERTS, resource_type, good_cert()) == []


@pytest.mark.parametrize("resource_type", [SELF_SIGNED, LOCALLY_SIGNED])
def test_cert_valid_over_90_days_is_a_violation(resource_type):
    cert = good_cert()
    cert["validityPeriodHours"] = 2161
    [message] = run_policy(CERTS, resource_type, cert)
    assert "validityPeriodHours" in message and "2160" in message


def test_cert_validity_as_string_over_90_days_is_a_violation():
    cert = good_cert()
    cert["validityPeriodHours"] = "8760"
    assert run_policy(CERTS, SELF_SIGNED, cert)


def test_cert_without_validity_is_a_violation():
    cert = good_cert()
    del cert["validityPeriodHours"]
    assert run_policy(CERTS, LOCALLY_SIGNED, cert)


def test_cert_without_early_renewal_is_a_violation():
    cert = good_cert()
    del cert["earlyRenewalHours"]
    [message] = run_policy(CERTS, SELF_SIGNED, cert)
    assert "earlyRenewalHours" in message


def test_cert_with_zero_early_renewal_is_a_violation():
    cert = good_cert()
    cert["earlyRenewalHours"] = 0
    assert run_policy(CERTS, SELF_SIGNED, cert)


def test_cert_with_early_renewal_not_below_validity_is_a_violation():
    cert = good_cert()
    cert["earlyRenewalHours"] = 2160
    assert run_policy(CERTS, SELF_SIGNED, cert)


def test_maximum_validity_comes_from_policy_config():
    assert run_policy(CERTS, SELF_SIGNED, good_cert(), config={"maximumValidityHours": 720})


def test_unknown_validity_raises_instead_of_passing():
    cert = good_cert()
    cert["validityPeriodHours"] = UNKNOWN
    with pytest.raises(UnknownValueError):
        run_policy(CERTS, SELF_SIGNED, cert)
