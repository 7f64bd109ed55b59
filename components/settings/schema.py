"""The stack settings' schema: every key's type, default and description, defined once.

``Pulumi.yaml``'s ``config:`` block and the README's settings table are
generated from :data:`SCHEMA` (``python -m components.settings``, ``--check`` to only compare;
tests/unit/test_settings.py fails when they drift). The rules themselves
(what a value must look like) live in :mod:`.fields` and :mod:`.parse`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "odoo-hosting"

# Hetzner locations in the EU (network zone eu-central). RES-01.
EU_LOCATIONS = ("fsn1", "nbg1", "hel1")
NETWORK_ZONE = "eu-central"

# Current Hetzner server types (cx22/cpx11 were retired in 2025-26): (vCPUs, RAM in GB),
# which size Odoo's workers and limits.
SERVER_SIZES = {
    "cx23": (2, 4), "cx33": (4, 8), "cx43": (8, 16), "cx53": (16, 32),
    "cpx22": (2, 4), "cpx32": (4, 8), "cpx42": (8, 16), "cpx52": (12, 24), "cpx62": (16, 32),
    "ccx13": (2, 8), "ccx23": (4, 16), "ccx33": (8, 32), "ccx43": (16, 64), "ccx53": (32, 128), "ccx63": (48, 192),
}
SERVER_TYPES = tuple(SERVER_SIZES)

# The host configuration is rendered for Debian 12 (bookworm) only.
IMAGES = ("debian-12",)

EXPOSURES = ("public", "vpn-only")

MIN_RSA_BITS = 3072

# Outside connections (TLS-03): scheme -> (kind, encrypted from the first byte).
# smtp/imap/ldap are plaintext unless `starttls: true` upgrades them.
CONNECTION_SCHEMES = {
    "https": ("http", True), "http": ("http", False),
    "wss": ("http", True), "ws": ("http", False),
    "smtps": ("smtp", True), "smtp": ("smtp", False),
    "imaps": ("imap", True), "imap": ("imap", False),
    "ldaps": ("ldap", True), "ldap": ("ldap", False),
    "postgresql": ("postgresql", False), "postgres": ("postgresql", False),
}
STARTTLS_KINDS = ("smtp", "imap", "ldap")

MIN_DATA_VOLUME_GB = 10
MAX_DATA_VOLUME_GB = 10240
MIN_WINDOW_MINUTES = 30
MAX_CREDENTIAL_ROTATION_DAYS = 45
"""Each rotated credential lives two rotation periods: 2 x 45 = 90 days (BKP-03, BKP-05)."""

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""The default of a key the stack must set."""


@dataclass(frozen=True)
class Key:
    """One setting of the ``odoo-hosting:`` namespace."""

    name: str
    type: str
    """Pulumi's schema type: string, integer, boolean, array, or object (not declarable)."""
    default: Any
    """:data:`REQUIRED`, None (optional, no default) or the value taken when unset."""
    description: str
    """One sentence, in Pulumi.yaml and in the README's table."""
    structured: bool = False
    """Read as YAML list/object (JSON text from ``pulumi config set --path``)."""
    secret: bool = False
    """Set with ``pulumi config set --secret`` only; its value is never shown."""
    declared: bool = True
    """Declared in Pulumi.yaml. Pulumi's schema has no object type, and the CLI refuses a
    stack that lacks a declared key without default, so object keys, optional keys without
    a default and secrets are not declared (the program validates every key anyway)."""


VPN_DEFAULTS = {"subnet": "10.66.0.0/24", "port": 51820}
"""``vpn``'s fields when a stack leaves them out (``peers`` has no default)."""

_SECRET = "secret: `pulumi config set --secret` only; never echoed in errors"

SCHEMA: tuple[Key, ...] = (
    Key("clientId", "string", REQUIRED,
        "Client slug (3-32 chars, lowercase letters, digits, '-'); carried by every resource as the `client` label."),
    Key("location", "string", "fsn1", "Hetzner location, EU only (fsn1, nbg1, hel1)."),
    Key("serverType", "string", "cx33", "Hetzner server type (cx23/cx33/cx43/cx53, cpx22..cpx62, ccx13..ccx63)."),
    Key("image", "string", "debian-12", "Server image; the host configuration is rendered for Debian 12."),
    Key("exposure", "string", "vpn-only",
        "`public` (HTTPS on the internet) or `vpn-only` (nothing but WireGuard is reachable; the default)."),
    Key("domains", "array", [], "The client's FQDNs, required when public, forbidden when vpn-only.",
        structured=True, declared=False),
    Key("acmeEmail", "string", None, "E-mail address of the ACME account, required when public.", declared=False),
    Key("sshKeys", "array", REQUIRED,
        "Operator keys `[{name, publicKey}]`: ed25519, ecdsa, sk- keys, or RSA >= 3072 bits (parsed).",
        structured=True, declared=False),
    Key("adminUser", "string", "ops", "Non-root login created on the host for operators."),
    Key("vpn", "object", VPN_DEFAULTS,
        "`{subnet, port, peers: [{name, publicKey, address}]}`; at least one peer (SSH is reachable only "
        "through it).", structured=True, declared=False),
    Key("privateNetwork", "string", "10.10.0.0/16",
        "The client's own Hetzner private network (RFC 1918), not overlapping the VPN subnet."),
    Key("dataVolumeSize", "integer", 20, "Size in GB of the LUKS-encrypted data volume (10-10240)."),
    Key("maintenanceWindow", "string", "03:00-05:00",
        "Daily UTC window (HH:MM-HH:MM, at least 30 minutes) for security-update reboots."),
    Key("serverProtection", "boolean", True,
        "Hetzner delete/rebuild protection on the server; turn off explicitly before a planned replacement."),
    Key("vaultAddress", "string", REQUIRED,
        "HTTPS address of the Vault the host fetches its boot secrets (LUKS key, WireGuard key) from."),
    Key("odooVersion", "string", "17.0", "Odoo series (17.0 or 18.0); picks the official image pinned by digest."),
    Key("incidentContacts", "array", REQUIRED,
        "E-mail addresses of the client's incident contacts, subscribed to its EU notification channel (INC-01).",
        structured=True),
    Key("incidentRegion", "string", "eu-central-1", "EU AWS region of the incident channel (SNS topic, KMS key)."),
    Key("sso", "object", {},
        "`{google: {clientId}, microsoft: {clientId, tenant}, ldap: {url, starttls, bindDn, baseDn, userFilter}}`; "
        "LDAP only over ldaps:// or STARTTLS.", structured=True, declared=False),
    Key("outsideConnections", "array", [],
        "`[{name, url, starttls}]`: SMTP/IMAP/LDAP/PostgreSQL/webhook endpoints, no credentials in URLs; "
        "plaintext ones are reported (TLS-03).", structured=True, declared=False),
    Key("oauthGoogleClientSecret", "string", None, f"Google OAuth client secret; {_SECRET}.", secret=True,
        declared=False),
    Key("oauthMicrosoftClientSecret", "string", None, f"Microsoft OAuth client secret; {_SECRET}.", secret=True,
        declared=False),
    Key("ldapBindPassword", "string", None, f"LDAP bind password, required with sso.ldap; {_SECRET}.", secret=True,
        declared=False),
    Key("smtpPassword", "string", None, f"Password of the outgoing mail server; {_SECRET}.", secret=True,
        declared=False),
    Key("backupRegion", "string", "eu-central-1", "AWS region of the client's backup bucket (EU only, eu-*)."),
    Key("backupTime", "string", "01:30", "Daily backup start (HH:MM UTC), outside the maintenance window."),
    Key("backupFastRestoreDays", "integer", 30,
        "Days backup objects stay in S3 STANDARD (fast restore) before moving to GLACIER."),
    Key("backupDeepArchiveDays", "integer", 120,
        "Days after which archived backup objects move to DEEP_ARCHIVE (> backupFastRestoreDays)."),
    Key("backupRetentionDays", "integer", 400, "Days after which old backup objects expire (> backupDeepArchiveDays)."),
    Key("backupLockDays", "integer", 30,
        "S3 object lock default retention (GOVERNANCE) in days (<= backupRetentionDays)."),
    Key("backupKeepDaily", "integer", 7, "Daily restic snapshots kept by forget --prune."),
    Key("backupKeepWeekly", "integer", 5, "Weekly restic snapshots kept by forget --prune."),
    Key("backupKeepMonthly", "integer", 12, "Monthly restic snapshots kept by forget --prune."),
    Key("credentialRotationDays", "integer", 30,
        "Every this many days a new restic password and bucket access key become current; each lives two "
        "periods (1-45, so <= 90 days)."),
)

KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}
SECRET_KEYS = tuple(key.name for key in SCHEMA if key.secret)
"""Secrets set with `pulumi config set --secret`; parse_settings records only
which are present and never shows their values."""


def default(name: str) -> Any:
    """The value a key takes when the stack leaves it out (None when it has none)."""
    value = KEYS[name].default
    return None if value is REQUIRED else value


# ---- generated views ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
README_BEGIN, README_END = "<!-- settings table: generated from components/settings/schema.py -->", \
    "<!-- end of settings table -->"


def pulumi_config() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's ``config:`` block."""
    block = {}
    for key in SCHEMA:
        if not key.declared:
            continue
        entry: dict[str, Any] = {"type": key.type}
        if key.type == "array":
            entry["items"] = {"type": "string"}
        if key.default not in (REQUIRED, None):
            entry["default"] = key.default
        entry["description"] = key.description
        block[key.name] = entry
    return block


def _shown(value: Any) -> str:
    if value is REQUIRED:
        return "(required)"
    if value is None:
        return "none"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def readme_table() -> str:
    rows = ["| key | type | default | what it is |", "|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.type}{' (secret)' if k.secret else ''} | {_shown(k.default)} | {k.description} |"
             for k in SCHEMA]
    return "\n".join([README_BEGIN, *rows, README_END])


def render_pulumi_yaml(text: str) -> str:
    """``text`` (Pulumi.yaml) with its ``config:`` block regenerated; everything above it kept."""
    head = text[:text.index("\nconfig:\n") + 1]
    body = yaml.safe_dump({"config": pulumi_config()}, sort_keys=False, width=4096, allow_unicode=True)
    return head + body


def render_readme(text: str) -> str:
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {README_BEGIN!r} marker")
    return pattern.sub(lambda _match: readme_table(), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate Pulumi.yaml's config block and the README's "
                                                 "settings table from the schema.")
    parser.add_argument("--check", action="store_true", help="only report drift (exit 1), write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, render in ((ROOT / "Pulumi.yaml", render_pulumi_yaml), (ROOT / "README.md", render_readme)):
        text = path.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if stale:
        print(("out of date: " if args.check else "regenerated: ") + ", ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
