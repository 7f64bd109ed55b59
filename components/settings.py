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

    @property
    def public(self) -> bool:
        return self.exposure == "public"

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
}


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate plain config values (keys without namespace) into Settings.

    Missing keys take the defaults in KEYS; unknown keys are an error, so a
    typo never silently falls back to a default.
    """
    for name in raw:
        if name not in KEYS:
            raise SettingsError(name, raw[name], "a known key: " + ", ".join(KEYS))
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


def load_settings() -> Settings:
    """Read this stack's ``odoo-hosting:*`` config once and validate it."""
    # The runtime's config map is the only way to see keys we do not know,
    # which is how a typo ("clientid") is caught instead of ignored.
    all_config: Mapping[str, Any] = pulumi.runtime.config.CONFIG.get()
    prefix = NAMESPACE + ":"
    raw = {k[len(prefix):]: _decode(k[len(prefix):], v) for k, v in all_config.items() if k.startswith(prefix)}
    return parse_settings(raw)
