"""TLS-04: keys and certificates made by the program meet the floor.

pulumi-tls defaults matter: a PrivateKey without ``rsaBits`` is RSA 2048 and
one without ``ecdsaCurve`` is P224, both below the floor.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import as_number, config_int, get, resource_policy, shown

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"
CERT_TYPES = (SELF_SIGNED_CERT, LOCALLY_SIGNED_CERT)

DEFAULT_MIN_RSA_BITS = 3072
DEFAULT_MAX_VALIDITY_HOURS = 90 * 24
PROVIDER_DEFAULT_RSA_BITS = 2048
PROVIDER_DEFAULT_CURVE = "P224"
STRONG_CURVES = ("P256", "P384", "P521")

_KEY_CONFIG = {
    "minimumRsaBits": {
        "type": "integer", "minimum": 2048, "default": DEFAULT_MIN_RSA_BITS,
        "description": "Smallest RSA key size accepted (TLS-04: 3072).",
    },
}
_CERT_CONFIG = {
    "maximumValidityHours": {
        "type": "integer", "minimum": 1, "default": DEFAULT_MAX_VALIDITY_HOURS,
        "description": "Longest certificate validity accepted, in hours (TLS-04: 90 days = 2160).",
    },
}


def _validate_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    min_bits = config_int(args, "minimumRsaBits", DEFAULT_MIN_RSA_BITS, minimum=2048)
    algorithm = str(get(args.props, "algorithm", "")).strip().upper()
    if algorithm == "RSA":
        raw = get(args.props, "rsaBits")
        bits = as_number(raw) if raw is not None else PROVIDER_DEFAULT_RSA_BITS
        if bits is None or bits < min_bits:
            what = (f"rsaBits {shown(raw)}" if raw is not None
                    else f"rsaBits is not set (the provider default is {PROVIDER_DEFAULT_RSA_BITS})")
            report_violation(f"the RSA key is too weak: {what}; set rsaBits to at least {min_bits}, or use "
                             "algorithm ECDSA with ecdsaCurve P256/P384 or ED25519.", None)
    elif algorithm == "ECDSA":
        raw = get(args.props, "ecdsaCurve")
        curve = str(raw).strip().upper() if raw is not None else PROVIDER_DEFAULT_CURVE
        if curve not in STRONG_CURVES:
            what = (f"ecdsaCurve {raw}" if raw is not None
                    else f"ecdsaCurve is not set (the provider default is {PROVIDER_DEFAULT_CURVE})")
            report_violation(f"the ECDSA key is too weak: {what}; set ecdsaCurve to P256, P384 or P521.", None)
    elif algorithm != "ED25519":
        report_violation(
            f"algorithm '{algorithm}' is not one of RSA, ECDSA or ED25519; use ECDSA P256 or ED25519.", None)


tls_private_key_strength = resource_policy(
    name="tls-private-key-strength",
    description="Checks that TLS private keys are ECDSA P-256 or stronger, Ed25519, or RSA with at least "
                "3072 bits (an absent rsaBits is the provider default 2048, an absent ecdsaCurve is P224).",
    controls=["TLS-04"],
    severity=Severity.HIGH,
    remediation="Create keys with tls.PrivateKey(algorithm=\"ECDSA\", ecdsa_curve=\"P256\") (or ED25519, or "
                "RSA with rsa_bits>=3072).",
    validate=_validate_key,
    applies_to=(PRIVATE_KEY,),
    config=_KEY_CONFIG,
)


def _validate_cert(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    max_hours = config_int(args, "maximumValidityHours", DEFAULT_MAX_VALIDITY_HOURS, minimum=1)
    raw = get(args.props, "validityPeriodHours")
    hours = as_number(raw)
    if hours is None or hours > max_hours:
        report_violation(f"validityPeriodHours is {shown(raw)}, above {max_hours} hours ({max_hours // 24} days); "
                         f"set validityPeriodHours to at most {max_hours}.", None)
    early = as_number(get(args.props, "earlyRenewalHours"))
    if early is None or early <= 0:
        report_violation("earlyRenewalHours is not set, so the certificate is re-issued only after it has "
                         "expired; set earlyRenewalHours (e.g. a third of the validity) so a routine "
                         "pulumi up renews it first.", None)
    elif hours is not None and early >= hours:
        report_violation(f"earlyRenewalHours ({early:g}) is not below validityPeriodHours ({hours:g}), so "
                         "every pulumi up re-issues the certificate; lower earlyRenewalHours.", None)


tls_cert_validity = resource_policy(
    name="tls-certificate-short-validity",
    description="Checks that self-signed and locally signed TLS certificates are valid for at most 90 days "
                "and have an early-renewal window.",
    controls=["TLS-04"],
    severity=Severity.MEDIUM,
    remediation="Set validity_period_hours<=2160 and early_renewal_hours (e.g. 720) on tls.SelfSignedCert "
                "and tls.LocallySignedCert.",
    validate=_validate_cert,
    applies_to=CERT_TYPES,
    config=_CERT_CONFIG,
)


# --- the same floor for certificates Vault issues ---------------------------------------------------

PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_HOURS = {"": 1 / 3600, "s": 1 / 3600, "m": 1 / 60, "h": 1, "d": 24}


def duration_hours(value: Any) -> float | None:
    """A Vault duration (seconds as a number, or "720h", "90d", "3600") in hours; None when unreadable."""
    number = as_number(value)
    if number is not None:
        return number / 3600
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    return float(match.group(1)) * _UNIT_HOURS[match.group(2)] if match else None


def _validate_pki_role(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    min_bits = config_int(args, "minimumRsaBits", DEFAULT_MIN_RSA_BITS, minimum=2048)
    max_hours = config_int(args, "maximumValidityHours", DEFAULT_MAX_VALIDITY_HOURS, minimum=1)
    key_type = str(get(args.props, "keyType", "rsa")).strip().lower()
    bits = as_number(get(args.props, "keyBits"))
    if key_type == "any":
        report_violation("keyType is 'any', so the role signs CSRs with keys of any size; set keyType rsa "
                         f"(keyBits >= {min_bits}) or ec (keyBits >= 256).", None)
    elif key_type == "rsa" and (bits or PROVIDER_DEFAULT_RSA_BITS) < min_bits:
        report_violation(f"keyBits is {shown(bits) if bits else 'not set (Vault default 2048)'} for rsa keys; set "
                         f"keyBits to at least {min_bits}, or keyType ec.", None)
    elif key_type == "ec" and bits is not None and bits < 256:
        report_violation(f"keyBits is {shown(bits)} for ec keys; set keyBits to 256, 384 or 521.", None)
    raw = get(args.props, "maxTtl")
    if raw is not None:
        hours = duration_hours(raw)
        if hours is None:
            report_violation(f"maxTtl '{raw}' cannot be read as a duration; set it to at most {max_hours}h.", None)
        elif hours > max_hours:
            report_violation(f"maxTtl is {shown(raw)}, above {max_hours} hours ({max_hours // 24} days); set maxTtl "
                             f"to at most {max_hours}h.", None)


vault_pki_role_floor = resource_policy(
    name="vault-pki-role-key-and-validity",
    description="Checks that Vault PKI roles issue keys at the TLS-04 floor (RSA >= 3072 bits, EC >= 256, not "
                "'any') and certificates valid for at most 90 days (maxTtl).",
    controls=["TLS-04"],
    severity=Severity.HIGH,
    remediation="Set key_type/key_bits (rsa 3072+ or ec 256+) and max_ttl <= 2160h on "
                "vault.pkisecret.SecretBackendRole.",
    validate=_validate_pki_role,
    applies_to=(PKI_ROLE,),
    config={**_KEY_CONFIG, **_CERT_CONFIG},
)
