"""TLS-03 (advisory): Odoo's connections to outside systems use TLS.

The Odoo container lists the outside systems it is configured to reach in
the label ``odoo-hosting/outside-connections`` (JSON: name, url, starttls).
A plaintext one is not blocked: each yields an advisory violation naming the
endpoint, so the client can be told (preflight gathers them per stack in an
"insecure connections" section). Messages start with
``outside connection '<name>' (<url>)``; preflight reads that form.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, Severity

from ._meta import cannot_check, container_labels, get, resource_policy

CONTAINER = "docker:index/container:Container"
CONNECTIONS_LABEL = "odoo-hosting/outside-connections"
ENCRYPTED_SCHEMES = ("https", "wss", "smtps", "imaps", "ldaps", "pop3s")
STARTTLS_SCHEMES = ("smtp", "imap", "ldap", "pop3")
_POSTGRES_TLS = ("require", "verify-ca", "verify-full")


def connection_is_encrypted(url: str, starttls: bool = False) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ENCRYPTED_SCHEMES:
        return True
    if scheme in STARTTLS_SCHEMES:
        return bool(starttls)
    if scheme in ("postgresql", "postgres"):
        return parse_qs(parts.query).get("sslmode", [""])[-1] in _POSTGRES_TLS
    return False


def insecure_connections(label_value: str) -> list[tuple[str, str]]:
    """(name, url) of each plaintext connection in the label; unreadable JSON is one finding."""
    try:
        entries = json.loads(label_value)
    except ValueError:
        return [("(unreadable list)", CONNECTIONS_LABEL)]
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        url = str(entry.get("url", ""))
        if not connection_is_encrypted(url, entry.get("starttls") is True):
            found.append((str(entry.get("name", "?")), url))
    return found


ROLE_LABEL = "odoo-hosting/role"
ODOO_ROLE = "odoo"


def odoo_container(args: ResourceValidationArgs, what: str) -> dict[str, Any]:
    """The labels of the Odoo container (role ``odoo``, or no role and an Odoo image); another container
    is not applicable; one without a role label nor an Odoo image is "cannot check"."""
    labels = container_labels(args.props)
    role = str(labels.get(ROLE_LABEL) or "").strip().lower()
    if role and role != ODOO_ROLE:
        args.not_applicable("judges only the Odoo container (label odoo-hosting/role=odoo)")
    if not role and "odoo" not in str(get(args.props, "image", "")).lower():
        cannot_check(f"{what}: the container has no '{ROLE_LABEL}' label and no Odoo image, so the policy "
                     "cannot tell whether it is the Odoo container; label it")
    return labels


def odoo_label(args: ResourceValidationArgs, label: str, what: str) -> str:
    """The value of ``label`` on the Odoo container (:func:`odoo_container`); a missing or non-text label
    is "cannot check"."""
    value = odoo_container(args, what).get(label)
    if not isinstance(value, str):
        cannot_check(f"{what}: the Odoo container has no '{label}' label (JSON), so the policy cannot see "
                     "its configuration; the app component sets it")
    return value


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    value = odoo_label(args, CONNECTIONS_LABEL, "the transport of Odoo's outside connections (TLS-03)")
    for name, url in insecure_connections(value):
        report_violation(
            f"outside connection '{name}' ({url}) is not encrypted: credentials and data cross the network "
            "in plaintext. Tell the client; use the TLS variant (https, smtps/imaps/ldaps, or starttls: true, "
            "sslmode=require) in odoo-hosting:outsideConnections.", None)


odoo_outside_connections_tls = resource_policy(
    name="docker-odoo-outside-connections-tls",
    description="Checks that the outside systems Odoo connects to (mail, directory, databases, webhooks) "
                "are reached over TLS; a plaintext one is reported, not blocked.",
    controls=["TLS-03"],
    severity=Severity.MEDIUM,
    remediation="Switch the connection to its TLS variant in odoo-hosting:outsideConnections, or tell the client "
                "the connection is unencrypted.",
    validate=_validate,
    applies_to=(CONTAINER,),
    enforcement_level=EnforcementLevel.ADVISORY,
    scope="client",
)


SSO_LABEL = "odoo-hosting/sso"
"""JSON {"oauth": [names], "ldap": {"url", "starttls"} | null} on the Odoo container."""


def sso_problems(label_value: str) -> list[str]:
    try:
        sso = json.loads(label_value)
    except ValueError:
        return [f"the {SSO_LABEL} label is not JSON, so the LDAP transport cannot be checked"]
    ldap = sso.get("ldap") if isinstance(sso, dict) else None
    if not isinstance(ldap, dict):
        return []
    url = str(ldap.get("url", ""))
    scheme = urlsplit(url).scheme.lower() if url else ""
    starttls = ldap.get("starttls") is True
    if scheme == "ldaps" or (scheme == "ldap" and starttls):
        return []
    return [f"LDAP login uses {url or 'no URL'} without TLS, so passwords cross the network in plaintext; "
            "use ldaps:// or ldap:// with starttls: true in odoo-hosting:sso.ldap"]


def _validate_sso(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    value = odoo_label(args, SSO_LABEL, "the transport of Odoo's LDAP login (ACC-05)")
    for problem in sso_problems(value):
        report_violation(f"sso: {problem}.", None)


odoo_sso_ldap_tls = resource_policy(
    name="docker-odoo-sso-ldap-tls",
    description="Checks that LDAP login configured for Odoo uses TLS (ldaps:// or STARTTLS).",
    controls=["ACC-05"],
    severity=Severity.HIGH,
    remediation="Set odoo-hosting:sso.ldap.url to an ldaps:// URL, or keep ldap:// with starttls: true.",
    validate=_validate_sso,
    applies_to=(CONTAINER,),
    scope="client",
)
