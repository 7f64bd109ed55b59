"""What the settings are once validated: frozen dataclasses, and the one error type."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import pulumi

from .schema import NAMESPACE, SERVER_SIZES

MAX_SHOWN = 60
"""At most this many characters of a given value appear in an error."""

# Keys whose values are never shown: the secret settings and anything named like one.
_SECRET_NAME_RE = re.compile(r"pass|secret|token|credential|private|bearer|auth", re.IGNORECASE)
# Values that must never be echoed wherever they were pasted.
_SECRET_VALUE_RE = re.compile(r"PRIVATE KEY|^\s*[a-z][a-z0-9+.-]*://[^/?#]*@|[?&;](?:[^=&]*(?:pass|pwd|secret|token|"
                              r"key|auth|sig|credential)[^=&]*)=", re.IGNORECASE)


class Hidden(str):
    """A description shown in an error instead of the value (the value may be secret)."""


def shown_value(key: str, given: Any) -> str:
    """How an error shows ``given``: never a value that may be secret, never more than MAX_SHOWN chars,
    always on one line (repr escapes control characters)."""
    if given is None:
        return "(not set)"
    if isinstance(given, Hidden):
        return str(given)
    if _SECRET_NAME_RE.search(key.rpartition(".")[2]) or _SECRET_VALUE_RE.search(str(given)):
        return "(value not shown: it may be secret)"
    text = repr(given)
    if not text.isascii():
        text = ascii(given)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def shown_key(key: str) -> str:
    """A key as an error names it: ASCII, one line, cut to a sane length."""
    text = key if key.isascii() and key.isprintable() else ascii(key)[1:-1]
    return text if len(text) <= 80 else text[:77] + "..."


class SettingsError(pulumi.RunError):
    """A stack config value is missing or invalid.

    The message is one line: it names the key, what was given and what is allowed; it never
    echoes a value that may be secret (see :func:`shown_value`).
    """

    def __init__(self, key: str, given: Any, allowed: str) -> None:
        self.key = key
        self.given = given
        self.allowed = allowed
        one_line = " ".join(allowed.split())
        super().__init__(f"{NAMESPACE}:{shown_key(key)}: got {shown_value(key, given)}; allowed: {one_line}")


@dataclass(frozen=True, kw_only=True)
class SshKey:
    """An operator's SSH public key (ACC-01)."""

    name: str
    """Short label, also the Hetzner key name suffix."""
    public_key: str
    """The key in OpenSSH one-line form, normalised to ``type base64``."""
    key_type: str
    """The OpenSSH key type (``ssh-ed25519``, ``ecdsa-sha2-nistp256``...)."""
    bits: int
    """Key size in bits (256 for ed25519, the modulus size for RSA)."""


@dataclass(frozen=True, kw_only=True)
class VpnPeer:
    """An operator's WireGuard peer."""

    name: str
    public_key: str
    """Base64 of the peer's 32-byte Curve25519 public key."""
    address: ipaddress.IPv4Address
    """The peer's tunnel address, inside the VPN subnet."""


@dataclass(frozen=True, kw_only=True)
class Vpn:
    """The client's WireGuard VPN: the only way in for SSH and maintenance."""

    subnet: ipaddress.IPv4Network
    port: int
    peers: tuple[VpnPeer, ...]

    @property
    def host_address(self) -> ipaddress.IPv4Address:
        """The host takes the first address of the subnet."""
        return next(self.subnet.hosts())


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    """A daily window (UTC) in which the host may reboot for updates."""

    start_minute: int
    """Minutes after midnight, UTC."""
    end_minute: int
    """Minutes after midnight, UTC; may be smaller than start (window spans midnight)."""

    @property
    def duration_minutes(self) -> int:
        return (self.end_minute - self.start_minute) % (24 * 60)

    @staticmethod
    def _hhmm(minute: int) -> str:
        minute %= 24 * 60
        return f"{minute // 60:02d}:{minute % 60:02d}"

    @property
    def start(self) -> str:
        return self._hhmm(self.start_minute)

    @property
    def end(self) -> str:
        return self._hhmm(self.end_minute)

    @property
    def reboot_time(self) -> str:
        """When unattended-upgrades reboots: a quarter hour into the window
        (at most half of it), so upgrades started at the window's opening
        have finished and the reboot still falls inside the window."""
        return self._hhmm(self.start_minute + min(15, self.duration_minutes // 2))


@dataclass(frozen=True, kw_only=True)
class Backup:
    """The client's encrypted EU backups (BKP-01..05): where, when, how long."""

    region: str
    """AWS region of the backup bucket (EU only, BKP-02)."""
    time: str
    """Daily backup start, HH:MM UTC (outside the maintenance window)."""
    fast_restore_days: int
    """Days a backup object stays in S3 STANDARD (fast restore) before the archive tier."""
    deep_archive_days: int
    """Days after which archived objects move on to DEEP_ARCHIVE (slowest, cheapest)."""
    retention_days: int
    """Days after which old backup objects expire."""
    lock_days: int
    """S3 object lock default retention (GOVERNANCE) in days; at most the retention."""
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    """restic ``forget --prune`` policy: snapshots kept per day/week/month."""


@dataclass(frozen=True, kw_only=True)
class OAuthProvider:
    """An OAuth login provider for Odoo's ``auth_oauth`` (ACC-05)."""

    name: str
    """``google`` or ``microsoft``."""
    client_id: str
    """The public client id; the secret (if any) is a Pulumi secret."""
    tenant: str | None = None
    """Microsoft Entra tenant id or domain (``organizations`` when not pinned)."""


@dataclass(frozen=True, kw_only=True)
class Ldap:
    """LDAP login for Odoo's ``auth_ldap`` (ACC-05): TLS only."""

    url: str
    host: str
    port: int
    starttls: bool
    """True for ``ldap://`` upgraded with STARTTLS; False for ``ldaps://``."""
    bind_dn: str
    base_dn: str
    user_filter: str


@dataclass(frozen=True, kw_only=True)
class OutsideConnection:
    """A system Odoo talks to (TLS-03): mail, directory, databases, webhooks."""

    name: str
    url: str
    """The endpoint without credentials (userinfo is refused)."""
    kind: str
    """http, smtp, imap, ldap or postgresql."""
    host: str
    port: int | None
    encrypted: bool
    """TLS from the first byte, or STARTTLS (smtp/imap/ldap), or sslmode=require+ (postgresql)."""
    starttls: bool


@dataclass(frozen=True, kw_only=True)
class Sso:
    """Optional single sign-on for the client's Odoo (ACC-05)."""

    oauth: tuple[OAuthProvider, ...] = ()
    ldap: Ldap | None = None

    @property
    def modules(self) -> tuple[str, ...]:
        """The Odoo modules this configures."""
        return (("auth_oauth",) if self.oauth else ()) + (("auth_ldap",) if self.ldap else ())


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything one client stack needs, validated."""

    client_id: str
    """Slug naming the client; carried by every resource as the ``client`` label."""
    location: str
    """Hetzner location (EU only)."""
    server_type: str
    image: str
    exposure: str
    """``public`` (HTTPS on the internet) or ``vpn-only`` (nothing but WireGuard)."""
    domains: tuple[str, ...]
    acme_email: str | None
    ssh_keys: tuple[SshKey, ...]
    admin_user: str
    """The non-root login created on the host for operators."""
    vpn: Vpn
    private_network: ipaddress.IPv4Network
    """The client's own Hetzner private network."""
    private_subnet: ipaddress.IPv4Network
    data_volume_gb: int
    maintenance_window: MaintenanceWindow
    server_protection: bool
    """Hetzner delete/rebuild protection on the server; turning it off is
    the explicit, reviewed step before a server replacement."""
    vault_address: str
    """HTTPS address of the Vault the host fetches its boot secrets from."""
    backup: Backup
    """Encrypted backups of the database and filestore (BKP-01..05)."""
    credential_rotation_days: int
    """Half-life of rotated credentials (restic password, bucket access keys): a
    new one becomes current every this many days and each lives twice as long,
    so none is older than 90 days (BKP-03, BKP-05)."""
    odoo_version: str
    """Odoo series; picks the pinned official image."""
    incident_contacts: tuple[str, ...]
    """E-mail addresses subscribed to the client's incident channel (INC-01)."""
    incident_region: str
    """EU AWS region of the incident channel (SNS topic and its KMS key)."""
    sso: Sso
    outside_connections: tuple[OutsideConnection, ...]
    """Every outside system Odoo is configured to reach (TLS-03), LDAP included."""
    secrets_set: frozenset[str]
    """Which of SECRET_KEYS the stack config holds (values are read as Pulumi secrets)."""

    @property
    def public(self) -> bool:
        return self.exposure == "public"

    @property
    def database_name(self) -> str:
        """The client's one PostgreSQL database (Odoo's dbfilter pins it)."""
        return self.client_id.replace("-", "_")

    @property
    def server_size(self) -> tuple[int, int]:
        """(vCPUs, RAM GB) of the server type."""
        return SERVER_SIZES[self.server_type]

    @property
    def insecure_connections(self) -> tuple[OutsideConnection, ...]:
        return tuple(c for c in self.outside_connections if not c.encrypted)

    @property
    def labels(self) -> dict[str, str]:
        """Labels every labelled resource of this client carries (ISO-01)."""
        return {"client": self.client_id, "managed-by": NAMESPACE, "exposure": self.exposure}
