"""Stack settings: read the stack config once, validate eagerly, freeze.

Every other module receives a :class:`Settings` and never touches
``pulumi.Config``. A bad value stops the program with one
:class:`SettingsError` that names the key, what was given and what is
allowed. ``SettingsError`` is a ``pulumi.RunError``, so ``pulumi up`` prints
the message without a Python traceback.

The parsing half (:func:`parse_settings`) is a pure function of plain
values, so each rule is tested without Pulumi.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import pulumi

from components.app.images import ODOO_VERSIONS

NAMESPACE = "odoo-hosting"

# Hetzner locations in the EU (network zone eu-central). RES-01.
EU_LOCATIONS = ("fsn1", "nbg1", "hel1")
NETWORK_ZONE = "eu-central"

# Current Hetzner server types (cx22/cpx11 were retired in 2025-26).
SERVER_TYPES = (
    "cx23", "cx33", "cx43", "cx53",
    "cpx22", "cpx32", "cpx42", "cpx52", "cpx62",
    "ccx13", "ccx23", "ccx33", "ccx43", "ccx53", "ccx63",
)

# The host configuration is rendered for Debian 12 (bookworm) only.
IMAGES = ("debian-12",)

EXPOSURES = ("public", "vpn-only")

MIN_RSA_BITS = 3072

_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$", re.IGNORECASE)
_HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# SSH key types accepted for operator keys (ACC-01) and how to judge them.
_ED25519 = "ssh-ed25519"
_ECDSA = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
_SECURITY_KEYS = ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
_RSA = "ssh-rsa"

_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _is_rfc1918(net: ipaddress.IPv4Network) -> bool:
    return any(net.subnet_of(block) for block in _RFC1918)


# Hetzner server types: (vCPUs, RAM in GB); sizes Odoo's workers and limits.
SERVER_SIZES = {
    "cx23": (2, 4), "cx33": (4, 8), "cx43": (8, 16), "cx53": (16, 32),
    "cpx22": (2, 4), "cpx32": (4, 8), "cpx42": (8, 16), "cpx52": (12, 24), "cpx62": (16, 32),
    "ccx13": (2, 8), "ccx23": (4, 16), "ccx33": (8, 32), "ccx43": (16, 64), "ccx53": (32, 128), "ccx63": (48, 192),
}

# AWS regions in the EU (RES-01): the incident channel lives there.
_EU_AWS_REGION_RE = re.compile(r"^eu-(central|west|north|south)-[1-9]$")

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
_POSTGRES_TLS_MODES = ("require", "verify-ca", "verify-full")

# Secrets set with `pulumi config set --secret`; parse_settings records only
# which are present and never shows their values.
SECRET_KEYS = ("oauthGoogleClientSecret", "oauthMicrosoftClientSecret", "ldapBindPassword", "smtpPassword")

MIN_DATA_VOLUME_GB = 10
MAX_DATA_VOLUME_GB = 10240
MIN_WINDOW_MINUTES = 30


class SettingsError(pulumi.RunError):
    """A stack config value is missing or invalid.

    The message names the key, what was given and what is allowed; it never
    echoes a value read from a secret key.
    """

    def __init__(self, key: str, given: Any, allowed: str) -> None:
        self.key = key
        self.given = given
        self.allowed = allowed
        shown = "(not set)" if given is None else repr(given)
        super().__init__(f"{NAMESPACE}:{key}: got {shown}; allowed: {allowed}")


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
    tenant: Optional[str] = None
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
    port: Optional[int]
    encrypted: bool
    """TLS from the first byte, or STARTTLS (smtp/imap/ldap), or sslmode=require+ (postgresql)."""
    starttls: bool


@dataclass(frozen=True, kw_only=True)
class Sso:
    """Optional single sign-on for the client's Odoo (ACC-05)."""

    oauth: tuple[OAuthProvider, ...] = ()
    ldap: Optional[Ldap] = None

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
    acme_email: Optional[str]
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
    odoo_version: str = "17.0"
    """Odoo series; picks the pinned official image."""
    incident_contacts: tuple[str, ...] = ()
    """E-mail addresses subscribed to the client's incident channel (INC-01)."""
    incident_region: str = "eu-central-1"
    """EU AWS region of the incident channel (SNS topic and its KMS key)."""
    sso: Sso = Sso()
    outside_connections: tuple[OutsideConnection, ...] = ()
    """Every outside system Odoo is configured to reach (TLS-03), LDAP included."""
    secrets_set: frozenset[str] = frozenset()
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


# --------------------------------------------------------------------------
# parsing helpers: each raises SettingsError naming the key


def _require_str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(key, value, "a non-empty string")
    return value.strip()


def _choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise SettingsError(key, value, ", ".join(allowed))
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SettingsError(key, value, "true or false")


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise SettingsError(key, value, f"an integer from {low} to {high}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(key, value, f"an integer from {low} to {high}") from None
    if isinstance(value, float) and value != number or not low <= number <= high:
        raise SettingsError(key, value, f"an integer from {low} to {high}")
    return number


def _list(key: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingsError(key, value, "a list")
    return value


def _object(key: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SettingsError(key, value, "an object")
    return value


def _reject_unknown(key: str, obj: Mapping[str, Any], known: Sequence[str]) -> None:
    for name in obj:
        if name not in known:
            raise SettingsError(f"{key}.{name}", obj[name], f"only the fields {', '.join(known)}")


def _hostname(key: str, value: Any) -> str:
    text = _require_str(key, value).lower().rstrip(".")
    labels = text.split(".")
    try:
        ipaddress.ip_address(text)
        is_ip = True
    except ValueError:
        is_ip = False
    if (is_ip or len(text) > 253 or len(labels) < 2
            or not all(_HOSTNAME_LABEL_RE.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise SettingsError(key, value, "a fully qualified DNS name such as erp.example.com")
    return text


def _ssh_wire_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    length = int.from_bytes(blob[offset:offset + 4], "big")
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4:end], end


def parse_ssh_public_key(key: str, value: Any) -> tuple[str, str, int]:
    """Parse an OpenSSH public key line; return (type, normalised line, bits).

    Accepts ed25519, ECDSA (and their security-key variants) and RSA with at
    least MIN_RSA_BITS bits; anything else is a SettingsError naming ``key``.
    """
    allowed = (f"an OpenSSH public key line of type ssh-ed25519, ecdsa-sha2-nistp256/384/521, "
               f"sk-ssh-ed25519@openssh.com or ssh-rsa with >= {MIN_RSA_BITS} bits")
    text = _require_str(key, value)
    parts = text.split()
    if len(parts) < 2:
        raise SettingsError(key, value, allowed)
    key_type, b64 = parts[0], parts[1]
    try:
        blob = base64.b64decode(b64, validate=True)
        wire_type, offset = _ssh_wire_string(blob, 0)
    except (binascii.Error, ValueError):
        raise SettingsError(key, value, allowed) from None
    if wire_type.decode(errors="replace") != key_type:
        raise SettingsError(key, value, allowed + " (the type word must match the key data)")
    if key_type == _RSA:
        try:
            _exponent, offset = _ssh_wire_string(blob, offset)
            modulus, _ = _ssh_wire_string(blob, offset)
        except ValueError:
            raise SettingsError(key, value, allowed) from None
        bits = int.from_bytes(modulus, "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise SettingsError(key, f"ssh-rsa key of {bits} bits", allowed)
    elif key_type in (_ED25519, _SECURITY_KEYS[0]):
        try:
            point, _ = _ssh_wire_string(blob, offset)
        except ValueError:
            raise SettingsError(key, value, allowed) from None
        if len(point) != 32:
            raise SettingsError(key, value, allowed)
        bits = 256
    elif key_type in _ECDSA or key_type == _SECURITY_KEYS[1]:
        try:
            curve, _ = _ssh_wire_string(blob, offset)
        except ValueError:
            raise SettingsError(key, value, allowed) from None
        bits = {b"nistp256": 256, b"nistp384": 384, b"nistp521": 521}.get(curve, 0)
        if not bits:
            raise SettingsError(key, value, allowed)
    else:
        raise SettingsError(key, f"key of type {key_type}", allowed)
    return key_type, f"{key_type} {b64}", bits


def parse_wireguard_key(key: str, value: Any) -> str:
    text = _require_str(key, value)
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise SettingsError(key, value, "a WireGuard public key (base64 of 32 bytes, as printed by `wg pubkey`)")
    return text


def _private_network(key: str, value: Any) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(_require_str(key, value), strict=True)
    except ValueError:
        raise SettingsError(key, value, "an IPv4 network in CIDR form, e.g. 10.10.0.0/16") from None
    if not _is_rfc1918(net) or net.prefixlen > 28:
        raise SettingsError(key, value, "a private (RFC 1918) IPv4 network of prefix /28 or wider")
    return net


def _maintenance_window(key: str, value: Any) -> MaintenanceWindow:
    allowed = f"a daily UTC window HH:MM-HH:MM of at least {MIN_WINDOW_MINUTES} minutes, e.g. 03:00-05:00"
    match = _WINDOW_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise SettingsError(key, value, allowed)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    window = MaintenanceWindow(start_minute=h1 * 60 + m1, end_minute=h2 * 60 + m2)
    if window.duration_minutes < MIN_WINDOW_MINUTES:
        raise SettingsError(key, value, allowed)
    return window


def _vault_address(key: str, value: Any) -> str:
    allowed = "an https:// URL of the Vault server, e.g. https://vault.example.net:8200"
    text = _require_str(key, value) if value is not None else None
    match = re.match(r"^https://([a-z0-9.-]+)(:(\d{1,5}))?/?$", text or "", re.IGNORECASE)
    if not match or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        raise SettingsError(key, value, allowed)
    return text.rstrip("/")


_AWS_EU_REGION_RE = re.compile(r"^eu-(central|west|north|south)-[1-9]$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_CREDENTIAL_ROTATION_DAYS = 45
"""Each rotated credential lives two rotation periods: 2 x 45 = 90 days (BKP-03, BKP-05)."""


def _backup(value: Callable[[str], Any], window: MaintenanceWindow) -> Backup:
    region = value("backupRegion")
    if not isinstance(region, str) or not _AWS_EU_REGION_RE.match(region):
        raise SettingsError("backupRegion", region, "an AWS EU region such as eu-central-1, eu-west-1, eu-north-1")
    time_text = value("backupTime")
    match = _HHMM_RE.match(time_text) if isinstance(time_text, str) else None
    if not match:
        raise SettingsError("backupTime", time_text, "a daily UTC time HH:MM, e.g. 01:30")
    minute = int(match.group(1)) * 60 + int(match.group(2))
    if (minute - window.start_minute) % (24 * 60) < window.duration_minutes:
        raise SettingsError("backupTime", time_text,
                            f"a time outside the maintenance window {window.start}-{window.end} "
                            "(a reboot would cut the backup)")
    fast = _int("backupFastRestoreDays", value("backupFastRestoreDays"), 1, 3650)
    deep = _int("backupDeepArchiveDays", value("backupDeepArchiveDays"), 1, 3650)
    if deep <= fast:
        raise SettingsError("backupDeepArchiveDays", deep,
                            f"more days than backupFastRestoreDays ({fast}): an archive tier cannot start "
                            "before the fast-restore window ends")
    retention = _int("backupRetentionDays", value("backupRetentionDays"), 1, 3650)
    if retention <= deep:
        raise SettingsError("backupRetentionDays", retention,
                            f"more days than backupDeepArchiveDays ({deep}): backups must reach the "
                            "archive tiers before they expire")
    lock = _int("backupLockDays", value("backupLockDays"), 1, 3650)
    if lock > retention:
        raise SettingsError("backupLockDays", lock,
                            f"at most backupRetentionDays ({retention}): a lock longer than the retention "
                            "keeps backups the lifecycle should expire")
    return Backup(
        region=region,
        time=time_text,
        fast_restore_days=fast,
        deep_archive_days=deep,
        retention_days=retention,
        lock_days=lock,
        keep_daily=_int("backupKeepDaily", value("backupKeepDaily"), 1, 366),
        keep_weekly=_int("backupKeepWeekly", value("backupKeepWeekly"), 0, 520),
        keep_monthly=_int("backupKeepMonthly", value("backupKeepMonthly"), 0, 120),
    )


def _ssh_keys(key: str, value: Any) -> tuple[SshKey, ...]:
    entries = _list(key, value)
    if not entries:
        raise SettingsError(key, value, "at least one operator key: [{name: ..., publicKey: ssh-ed25519 ...}]")
    keys: list[SshKey] = []
    for i, entry in enumerate(entries):
        entry_key = f"{key}[{i}]"
        obj = _object(entry_key, entry)
        _reject_unknown(entry_key, obj, ("name", "publicKey"))
        name = _require_str(f"{entry_key}.name", obj.get("name"))
        if not _NAME_RE.match(name):
            raise SettingsError(f"{entry_key}.name", name, "letters, digits, '.', '_' or '-' (max 63)")
        key_type, line, bits = parse_ssh_public_key(f"{entry_key}.publicKey", obj.get("publicKey"))
        keys.append(SshKey(name=name, public_key=line, key_type=key_type, bits=bits))
    _unique(key, [k.name for k in keys], "names")
    _unique(key, [k.public_key for k in keys], "keys")
    return tuple(keys)


def _unique(key: str, values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise SettingsError(key, v, f"distinct {what} (this one appears twice)")
        seen.add(v)


def _vpn(key: str, value: Any) -> Vpn:
    obj = _object(key, value)
    _reject_unknown(key, obj, ("subnet", "port", "peers"))
    subnet_text = obj.get("subnet", "10.66.0.0/24")
    try:
        subnet = ipaddress.IPv4Network(subnet_text, strict=True)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}.subnet", subnet_text, "an IPv4 network in CIDR form, e.g. 10.66.0.0/24") from None
    if not _is_rfc1918(subnet) or not 16 <= subnet.prefixlen <= 29:
        raise SettingsError(f"{key}.subnet", subnet_text, "a private (RFC 1918) IPv4 network from /16 to /29")
    port = _int(f"{key}.port", obj.get("port", 51820), 1024, 65535)
    peers: list[VpnPeer] = []
    for i, entry in enumerate(_list(f"{key}.peers", obj.get("peers"))):
        entry_key = f"{key}.peers[{i}]"
        peer = _object(entry_key, entry)
        _reject_unknown(entry_key, peer, ("name", "publicKey", "address"))
        name = _require_str(f"{entry_key}.name", peer.get("name"))
        if not _NAME_RE.match(name):
            raise SettingsError(f"{entry_key}.name", name, "letters, digits, '.', '_' or '-' (max 63)")
        public_key = parse_wireguard_key(f"{entry_key}.publicKey", peer.get("publicKey"))
        try:
            address = ipaddress.IPv4Address(_require_str(f"{entry_key}.address", peer.get("address")))
        except ValueError:
            raise SettingsError(f"{entry_key}.address", peer.get("address"), f"an IPv4 address in {subnet}") from None
        host = next(subnet.hosts())
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address, host):
            raise SettingsError(f"{entry_key}.address", str(address),
                                f"a host address in {subnet} other than {host} (the server's)")
        peers.append(VpnPeer(name=name, public_key=public_key, address=address))
    if not peers:
        raise SettingsError(f"{key}.peers", obj.get("peers"),
                            "at least one operator peer: SSH is reachable only through the VPN")
    _unique(f"{key}.peers", [p.name for p in peers], "names")
    _unique(f"{key}.peers", [p.public_key for p in peers], "public keys")
    _unique(f"{key}.peers", [str(p.address) for p in peers], "addresses")
    return Vpn(subnet=subnet, port=port, peers=tuple(peers))


def _email(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
        raise SettingsError(key, value, "an e-mail address")
    return value.strip()


def _url_parts(key: str, value: Any, allowed: str) -> tuple[str, str, Optional[int], str]:
    """(scheme, host, port, query) of a URL; refuses credentials in it."""
    from urllib.parse import urlsplit

    text = _require_str(key, value)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise SettingsError(key, value, allowed) from None
    if parts.username is not None or parts.password is not None:
        # Echoing the value would print the credential.
        raise SettingsError(key, "(a URL with credentials)",
                            allowed + "; no user or password in the URL (secrets go in with `pulumi config set --secret`)")
    if not parts.scheme or not parts.hostname:
        raise SettingsError(key, value, allowed)
    return parts.scheme.lower(), parts.hostname.lower(), port, parts.query


def _outside_connection(key: str, entry: Any) -> OutsideConnection:
    obj = _object(key, entry)
    _reject_unknown(key, obj, ("name", "url", "starttls"))
    name = _require_str(f"{key}.name", obj.get("name"))
    if not _NAME_RE.match(name):
        raise SettingsError(f"{key}.name", name, "letters, digits, '.', '_' or '-' (max 63)")
    allowed = "a URL with one of the schemes " + ", ".join(CONNECTION_SCHEMES)
    scheme, host, port, query = _url_parts(f"{key}.url", obj.get("url"), allowed)
    if scheme not in CONNECTION_SCHEMES:
        raise SettingsError(f"{key}.url", obj.get("url"), allowed)
    kind, encrypted = CONNECTION_SCHEMES[scheme]
    starttls = _bool(f"{key}.starttls", obj.get("starttls", False))
    if starttls and (kind not in STARTTLS_KINDS or encrypted):
        raise SettingsError(f"{key}.starttls", True, f"true only for plain {', '.join(STARTTLS_KINDS)} URLs")
    if kind == "postgresql":
        from urllib.parse import parse_qs
        encrypted = parse_qs(query).get("sslmode", [""])[-1] in _POSTGRES_TLS_MODES
    return OutsideConnection(name=name, url=obj["url"].strip(), kind=kind, host=host, port=port,
                             encrypted=encrypted or starttls, starttls=starttls)


def _sso(key: str, value: Any) -> Sso:
    obj = _object(key, value)
    _reject_unknown(key, obj, ("google", "microsoft", "ldap"))
    oauth: list[OAuthProvider] = []
    for provider in ("google", "microsoft"):
        if obj.get(provider) is None:
            continue
        pkey = f"{key}.{provider}"
        entry = _object(pkey, obj[provider])
        _reject_unknown(pkey, entry, ("clientId", "tenant") if provider == "microsoft" else ("clientId",))
        client_id = _require_str(f"{pkey}.clientId", entry.get("clientId"))
        if not re.match(r"^[A-Za-z0-9._-]{8,200}$", client_id):
            raise SettingsError(f"{pkey}.clientId", client_id, "the OAuth client id as issued by the provider")
        tenant = None
        if provider == "microsoft":
            tenant = _require_str(f"{pkey}.tenant", entry.get("tenant", "organizations"))
            if not re.match(r"^[A-Za-z0-9.-]{3,100}$", tenant) or tenant == "common":
                raise SettingsError(f"{pkey}.tenant", tenant,
                                    "the client's Entra tenant id or domain, or 'organizations' (not 'common')")
        oauth.append(OAuthProvider(name=provider, client_id=client_id, tenant=tenant))
    ldap = None
    if obj.get("ldap") is not None:
        lkey = f"{key}.ldap"
        entry = _object(lkey, obj["ldap"])
        _reject_unknown(lkey, entry, ("url", "starttls", "bindDn", "baseDn", "userFilter"))
        allowed = "an ldaps:// URL, or ldap:// with starttls: true (LDAP only over TLS, ACC-05)"
        scheme, host, port, _query = _url_parts(f"{lkey}.url", entry.get("url"), allowed)
        starttls = _bool(f"{lkey}.starttls", entry.get("starttls", False))
        if scheme not in ("ldap", "ldaps") or (scheme == "ldap" and not starttls) or (scheme == "ldaps" and starttls):
            raise SettingsError(f"{lkey}.url", entry.get("url"), allowed)
        user_filter = _require_str(f"{lkey}.userFilter", entry.get("userFilter", "(uid=%s)"))
        if "%s" not in user_filter:
            raise SettingsError(f"{lkey}.userFilter", user_filter, "an LDAP filter containing %s for the login")
        ldap = Ldap(url=entry["url"].strip(), host=host, port=port or (636 if scheme == "ldaps" else 389),
                    starttls=starttls, bind_dn=_require_str(f"{lkey}.bindDn", entry.get("bindDn")),
                    base_dn=_require_str(f"{lkey}.baseDn", entry.get("baseDn")), user_filter=user_filter)
    return Sso(oauth=tuple(oauth), ldap=ldap)


def _secrets_set(raw: Mapping[str, Any], sso: Sso) -> frozenset[str]:
    present = frozenset(k for k in SECRET_KEYS if raw.get(k) not in (None, ""))
    for k in present:
        if not isinstance(raw[k], str):
            raise SettingsError(k, "(secret)", "a string set with `pulumi config set --secret`")
    if sso.ldap is not None and "ldapBindPassword" not in present:
        raise SettingsError("ldapBindPassword", None,
                            "the LDAP bind password, set with `pulumi config set --secret` (sso.ldap is configured)")
    return present


# --------------------------------------------------------------------------
# the schema: key -> (default, structured?)

KEYS: dict[str, tuple[Any, bool]] = {
    "clientId": (None, False),
    "location": ("fsn1", False),
    "serverType": ("cx33", False),
    "image": ("debian-12", False),
    "exposure": ("vpn-only", False),
    "domains": ([], True),
    "acmeEmail": (None, False),
    "sshKeys": (None, True),
    "adminUser": ("ops", False),
    "vpn": ({}, True),
    "privateNetwork": ("10.10.0.0/16", False),
    "dataVolumeSize": (20, False),
    "maintenanceWindow": ("03:00-05:00", False),
    "serverProtection": (True, False),
    "vaultAddress": (None, False),
    "odooVersion": ("17.0", False),
    "incidentContacts": (None, True),
    "incidentRegion": ("eu-central-1", False),
    "sso": ({}, True),
    "outsideConnections": ([], True),
    **{k: (None, False) for k in SECRET_KEYS},
    "backupRegion": ("eu-central-1", False),
    "backupTime": ("01:30", False),
    "backupFastRestoreDays": (30, False),
    "backupDeepArchiveDays": (120, False),
    "backupRetentionDays": (400, False),
    "backupLockDays": (30, False),
    "backupKeepDaily": (7, False),
    "backupKeepWeekly": (5, False),
    "backupKeepMonthly": (12, False),
    "credentialRotationDays": (30, False),
}


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate plain config values (keys without namespace) into Settings.

    Missing keys take the defaults in KEYS; unknown keys are an error, so a
    typo never silently falls back to a default.
    """
    for name in raw:
        if name not in KEYS:
            raise SettingsError(name, raw[name], "a known key: " + ", ".join(KEYS))
    raw = {k: v for k, v in raw.items() if not (k in SECRET_KEYS and v is None)}
    value: Callable[[str], Any] = lambda k: raw.get(k, KEYS[k][0])  # noqa: E731

    client_id = value("clientId")
    if not isinstance(client_id, str) or not _SLUG_RE.match(client_id):
        raise SettingsError("clientId", client_id,
                            "a slug of 3-32 characters: lowercase letters, digits and '-', starting with a letter")
    location = _choice("location", value("location"), EU_LOCATIONS)
    server_type = _choice("serverType", value("serverType"), SERVER_TYPES)
    image = _choice("image", value("image"), IMAGES)
    exposure = _choice("exposure", value("exposure"), EXPOSURES)

    domains = tuple(_hostname(f"domains[{i}]", d) for i, d in enumerate(_list("domains", value("domains"))))
    _unique("domains", domains, "domains")
    acme_email = value("acmeEmail")
    if exposure == "public":
        if not domains:
            raise SettingsError("domains", value("domains"), "at least one domain when exposure is public")
        if not isinstance(acme_email, str) or not _EMAIL_RE.match(acme_email):
            raise SettingsError("acmeEmail", acme_email,
                                "an e-mail address for the ACME account (required when exposure is public)")
    else:
        if domains:
            raise SettingsError("domains", list(domains),
                                "no domains when exposure is vpn-only (set exposure: public to serve them)")
        if acme_email is not None and (not isinstance(acme_email, str) or not _EMAIL_RE.match(acme_email)):
            raise SettingsError("acmeEmail", acme_email, "an e-mail address")

    admin_user = value("adminUser")
    if not isinstance(admin_user, str) or not _UNIX_USER_RE.match(admin_user) or admin_user == "root":
        raise SettingsError("adminUser", admin_user, "a Unix user name other than root (lowercase, max 32)")

    private_network = _private_network("privateNetwork", value("privateNetwork"))
    vpn = _vpn("vpn", value("vpn"))
    if vpn.subnet.overlaps(private_network):
        raise SettingsError("vpn.subnet", str(vpn.subnet),
                            f"a network that does not overlap privateNetwork ({private_network})")
    private_subnet = next(private_network.subnets(new_prefix=max(private_network.prefixlen, 24)))

    odoo_version = value("odooVersion")
    if isinstance(odoo_version, (int, float)) and not isinstance(odoo_version, bool):
        odoo_version = f"{float(odoo_version):.1f}"  # YAML reads 17.0 as a number
    odoo_version = _choice("odooVersion", odoo_version, ODOO_VERSIONS)
    contacts_raw = value("incidentContacts")
    contacts = tuple(_email(f"incidentContacts[{i}]", c)
                     for i, c in enumerate(_list("incidentContacts", contacts_raw)))
    if not contacts:
        raise SettingsError("incidentContacts", contacts_raw,
                            "at least one e-mail address of the client's incident contacts (INC-01)")
    _unique("incidentContacts", contacts, "addresses")
    incident_region = value("incidentRegion")
    if not isinstance(incident_region, str) or not _EU_AWS_REGION_RE.match(incident_region):
        raise SettingsError("incidentRegion", incident_region, "an EU AWS region (eu-central-1, eu-west-1, ...)")
    sso = _sso("sso", value("sso"))
    connections = [_outside_connection(f"outsideConnections[{i}]", c)
                   for i, c in enumerate(_list("outsideConnections", value("outsideConnections")))]
    _unique("outsideConnections", [c.name for c in connections], "names")
    if sso.ldap is not None:
        connections.append(OutsideConnection(name="sso-ldap", url=sso.ldap.url, kind="ldap", host=sso.ldap.host,
                                             port=sso.ldap.port, encrypted=True, starttls=sso.ldap.starttls))
    secrets_set = _secrets_set(raw, sso)

    return Settings(
        client_id=client_id,
        location=location,
        server_type=server_type,
        image=image,
        exposure=exposure,
        domains=domains,
        acme_email=acme_email,
        ssh_keys=_ssh_keys("sshKeys", value("sshKeys")),
        admin_user=admin_user,
        vpn=vpn,
        private_network=private_network,
        private_subnet=private_subnet,
        data_volume_gb=_int("dataVolumeSize", value("dataVolumeSize"), MIN_DATA_VOLUME_GB, MAX_DATA_VOLUME_GB),
        maintenance_window=_maintenance_window("maintenanceWindow", value("maintenanceWindow")),
        server_protection=_bool("serverProtection", value("serverProtection")),
        vault_address=_vault_address("vaultAddress", value("vaultAddress")),
        odoo_version=odoo_version,
        incident_contacts=contacts,
        incident_region=incident_region,
        sso=sso,
        outside_connections=tuple(connections),
        secrets_set=secrets_set,
        backup=_backup(value, _maintenance_window("maintenanceWindow", value("maintenanceWindow"))),
        credential_rotation_days=_int("credentialRotationDays", value("credentialRotationDays"),
                                      1, MAX_CREDENTIAL_ROTATION_DAYS),
    )


def _decode(name: str, text: Any) -> Any:
    """Config values arrive as strings; structured ones as JSON text."""
    structured = KEYS.get(name, (None, False))[1]
    if not structured or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise SettingsError(name, text, "a YAML list/object in the stack file (or JSON with `pulumi config set --path`)") from None


def load_secret(key: str) -> Optional[pulumi.Output[str]]:
    """A secret setting (one of SECRET_KEYS) as a Pulumi secret Output, or None when unset."""
    if key not in SECRET_KEYS:
        raise ValueError(f"{key} is not a secret setting")
    return pulumi.Config(NAMESPACE).get_secret(key)


def load_settings() -> Settings:
    """Read this stack's ``odoo-hosting:*`` config once and validate it."""
    # The runtime's config map is the only way to see keys we do not know,
    # which is how a typo ("clientid") is caught instead of ignored.
    all_config: Mapping[str, Any] = pulumi.runtime.config.CONFIG.get()
    prefix = NAMESPACE + ":"
    raw = {k[len(prefix):]: _decode(k[len(prefix):], v) for k, v in all_config.items() if k.startswith(prefix)}
    return parse_settings(raw)
