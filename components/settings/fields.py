"""Field rules: each function checks one value against its whole grammar and raises a
:class:`~.model.SettingsError` naming the key."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .model import MaintenanceWindow, SettingsError
from .schema import MIN_RSA_BITS, MIN_WINDOW_MINUTES

_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$", re.IGNORECASE)
_HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# AWS regions in the EU (RES-01, BKP-02): the backups and the incident channel live there.
_EU_AWS_REGION_RE = re.compile(r"^eu-(central|west|north|south)-[1-9]$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# SSH key types accepted for operator keys (ACC-01) and how to judge them.
_ED25519 = "ssh-ed25519"
_ECDSA = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
_SECURITY_KEYS = ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
_RSA = "ssh-rsa"

_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _is_rfc1918(net: ipaddress.IPv4Network) -> bool:
    return any(net.subnet_of(block) for block in _RFC1918)


def _require_str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(key, value, "a non-empty string")
    return value.strip()


def _choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
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


def _list(key: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingsError(key, value, "a list")
    return value


def _object(key: str, value: Any) -> dict[str, Any]:
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
    text = _require_str(key, value) if value is not None else ""
    match = re.match(r"^https://([a-z0-9.-]+)(:(\d{1,5}))?/?$", text, re.IGNORECASE)
    if not match or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        raise SettingsError(key, value, allowed)
    return text.rstrip("/")


def _unique(key: str, values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise SettingsError(key, v, f"distinct {what} (this one appears twice)")
        seen.add(v)


def _email(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL_RE.match(value.strip()):
        raise SettingsError(key, value, "an e-mail address")
    return value.strip()


def _url_parts(key: str, value: Any, allowed: str) -> tuple[str, str, int | None, str]:
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
        raise SettingsError(key, "(a URL with credentials)", allowed + "; no user or password in the URL "
                            "(secrets go in with `pulumi config set --secret`)")
    if not parts.scheme or not parts.hostname:
        raise SettingsError(key, value, allowed)
    return parts.scheme.lower(), parts.hostname.lower(), port, parts.query
