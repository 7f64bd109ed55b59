"""Field rules: each function checks one value against its whole grammar and raises a
:class:`~.model.SettingsError` naming the key."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .model import Hidden, MaintenanceWindow, SettingsError
from .schema import MIN_RSA_BITS, MIN_WINDOW_MINUTES

# Every grammar is matched with re.fullmatch (never `$`, which also matches before a trailing
# newline) and ASCII-only classes ([0-9], never \d, which takes any script's digits).
_SLUG_RE = re.compile(r"[a-z][a-z0-9-]{1,30}[a-z0-9]")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOSTNAME_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# A deliberately narrow e-mail grammar (a subset of RFC 5321's dot-atom): nothing a
# Caddyfile, YAML or shell would read as syntax ('#', '{', '$', quotes, spaces).
_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
_WINDOW_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")
_UNIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# AWS regions in the EU (RES-01, BKP-02): the backups and the incident channel live there.
_EU_AWS_REGION_RE = re.compile(r"eu-(central|west|north|south)-[1-9]")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_ASCII_INT_RE = re.compile(r"[+-]?[0-9]{1,12}")
# What a URL path/query may hold: RFC 3986's unreserved, sub-delims, ':', '@', '/', '%'
# (quotes, spaces, braces, '#', backslash and controls are refused, not escaped).
_URL_PATH_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_URL_QUERY_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
# Query parameters that carry credentials (refused: they would land in labels and logs).
_CREDENTIAL_PARAM_RE = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session", re.IGNORECASE)
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")

MAX_STRING = 256
"""Default length limit of a string setting."""
MAX_ITEMS = 100
"""Default limit of a list setting's entries."""

# SSH key types accepted for operator keys (ACC-01) and how to judge them.
_ED25519 = "ssh-ed25519"
_ECDSA = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
_SECURITY_KEYS = ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
_RSA = "ssh-rsa"

_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _is_rfc1918(net: ipaddress.IPv4Network) -> bool:
    return any(net.subnet_of(block) for block in _RFC1918)


def _require_str(key: str, value: Any, max_length: int = MAX_STRING) -> str:
    """A non-empty, single-line string of printable characters, at most ``max_length`` long.

    Never stripped: a value with surrounding blanks or a control character (a newline
    would start a new line in every file it is rendered into) is refused, not repaired."""
    if not isinstance(value, str) or not value:
        raise SettingsError(key, value, "a non-empty string")
    if len(value) > max_length:
        raise SettingsError(key, Hidden(f"({len(value)} characters)"), f"at most {max_length} characters")
    if not value.isprintable() or value != value.strip():
        raise SettingsError(key, value, "one line of printable characters without surrounding blanks")
    return value


def _choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SettingsError(key, value, ", ".join(allowed))
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false", "True", "False"):
        return value.lower() == "true"
    raise SettingsError(key, value, "true or false")


def _int(key: str, value: Any, low: int, high: int) -> int:
    allowed = f"an integer from {low} to {high}"
    if isinstance(value, bool):
        raise SettingsError(key, value, allowed)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        # .inf and .nan are floats too: int() of them raises, never a clean error.
        if not value.is_integer():
            raise SettingsError(key, value, allowed)
        number = int(value)
    elif isinstance(value, str) and _ASCII_INT_RE.fullmatch(value):
        number = int(value)  # ASCII digits only: int() alone also takes other scripts' digits
    else:
        raise SettingsError(key, value, allowed)
    if not low <= number <= high:
        raise SettingsError(key, value, allowed)
    return number


def _list(key: str, value: Any, max_items: int = MAX_ITEMS) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SettingsError(key, value, "a list")
    if len(value) > max_items:
        raise SettingsError(key, Hidden(f"({len(value)} entries)"), f"at most {max_items} entries")
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
            # The value of an unknown field is never shown: it may be a mistyped secret.
            raise SettingsError(f"{key}.{name}", Hidden("(value not shown)"), f"only the fields {', '.join(known)}")


def _matching(key: str, value: Any, pattern: re.Pattern[str], allowed: str, max_length: int = MAX_STRING) -> str:
    """A string matching ``pattern`` as a whole (fullmatch)."""
    if not isinstance(value, str) or not value:
        raise SettingsError(key, value, allowed)
    text = _require_str(key, value, max_length)
    if not pattern.fullmatch(text):
        raise SettingsError(key, value, allowed)
    return text


def _hostname(key: str, value: Any) -> str:
    """A fully qualified DNS name, lowercased, without the root dot."""
    allowed = "a fully qualified DNS name such as erp.example.com"
    text = _require_str(key, value, 254).lower()
    text = text[:-1] if text.endswith(".") else text
    labels = text.split(".")
    if (len(text) > 253 or len(labels) < 2 or not all(_HOSTNAME_LABEL_RE.fullmatch(label) for label in labels)
            or labels[-1].isdigit() or not text.isascii()):
        raise SettingsError(key, value, allowed)
    return text


def _ssh_wire_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    length = int.from_bytes(blob[offset:offset + 4], "big")
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4:end], end


def _ssh_wire_fields(blob: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` SSH wire strings filling the whole blob (no trailing bytes)."""
    fields, offset = [], 0
    for _ in range(count):
        field, offset = _ssh_wire_string(blob, offset)
        fields.append(field)
    if offset != len(blob):
        raise ValueError("trailing bytes")
    return fields


def canonical_base64(text: str) -> bytes:
    """Decode base64 that re-encodes to exactly ``text`` (no stray padding bits, no whitespace)."""
    if not _BASE64_RE.fullmatch(text):
        raise ValueError("not base64")
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("not canonical base64")
    return raw


_CURVES = {b"nistp256": ec.SECP256R1(), b"nistp384": ec.SECP384R1(), b"nistp521": ec.SECP521R1()}


def _ssh_key_bits(key_type: str, blob: bytes) -> int:
    """Parse the key blob of ``key_type``; its size in bits. ValueError if it is no valid key."""
    if key_type == _RSA:
        _type, exponent, modulus = _ssh_wire_fields(blob, 3)
        numbers = rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big"))
        return numbers.public_key().key_size
    if key_type in (_ED25519, _SECURITY_KEYS[0]):
        fields = _ssh_wire_fields(blob, 2 if key_type == _ED25519 else 3)
        ed25519.Ed25519PublicKey.from_public_bytes(fields[1])  # exactly 32 bytes
        if key_type != _ED25519 and not fields[2]:
            raise ValueError("no application")
        return 256
    fields = _ssh_wire_fields(blob, 3 if key_type in _ECDSA else 4)
    curve_name, point = fields[1], fields[2]
    if key_type[len("sk-" if key_type.startswith("sk-") else ""):].split("@")[0] != \
            f"ecdsa-sha2-{curve_name.decode('ascii', 'replace')}":
        raise ValueError("curve does not match the type")
    curve = _CURVES[curve_name]
    # The point must lie on the curve (cryptography checks it, OpenSSL refuses otherwise).
    ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    return curve.key_size


def parse_ssh_public_key(key: str, value: Any) -> tuple[str, str, int]:
    """Parse an OpenSSH public key line; return (type, re-serialised ``type base64`` line, bits).

    Accepts ed25519, ECDSA (point on its curve) and their security-key variants, and RSA
    with at least MIN_RSA_BITS bits; anything else is a SettingsError naming ``key``. The
    comment is dropped. A pasted private key is refused without being shown.
    """
    allowed = (f"an OpenSSH public key line of type ssh-ed25519, ecdsa-sha2-nistp256/384/521, "
               f"sk-ssh-ed25519@openssh.com or ssh-rsa with >= {MIN_RSA_BITS} bits")
    if isinstance(value, str) and "PRIVATE KEY" in value:
        raise SettingsError(key, Hidden("(what looks like a PRIVATE key; not shown)"),
                            allowed + " (the .pub file; replace the leaked private key)")
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(key, value, allowed)
    text = value.strip()  # `cat id_ed25519.pub` ends with a newline; the line is re-serialised anyway
    if len(text) > 16384:
        raise SettingsError(key, Hidden(f"({len(text)} characters)"), allowed)
    parts = text.split()
    if len(parts) < 2 or not text.isprintable():
        raise SettingsError(key, value, allowed)
    key_type, b64 = parts[0], parts[1]
    if key_type not in (_ED25519, _RSA, *_ECDSA, *_SECURITY_KEYS):
        raise SettingsError(key, Hidden(f"a key of type {ascii(key_type[:40])}"), allowed)
    try:
        blob = canonical_base64(b64)
        wire_type, _ = _ssh_wire_string(blob, 0)
    except ValueError:
        raise SettingsError(key, value, allowed + " (the key data is not valid base64)") from None
    if wire_type != key_type.encode():
        raise SettingsError(key, value, allowed + " (the type word must match the key data)")
    try:
        bits = _ssh_key_bits(key_type, blob)
    except (ValueError, KeyError, UnsupportedAlgorithm):
        raise SettingsError(key, value, allowed + " (the key data is not a valid key of its type)") from None
    if key_type == _RSA and bits < MIN_RSA_BITS:
        raise SettingsError(key, Hidden(f"an ssh-rsa key of {bits} bits"), allowed)
    return key_type, f"{key_type} {b64}", bits


def parse_wireguard_key(key: str, value: Any) -> str:
    """A WireGuard public key: canonical base64 of 32 bytes (what `wg pubkey` prints, and the only
    spelling `wg` accepts: '...XF=' for the bytes of '...XE=' is refused there, so it is here)."""
    allowed = "a WireGuard public key (canonical base64 of 32 bytes, as printed by `wg pubkey`)"
    if isinstance(value, str) and "PRIVATE" in value.upper():
        raise SettingsError(key, Hidden("(not shown)"), allowed)
    text = _require_str(key, value, 64)
    try:
        raw = canonical_base64(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SettingsError(key, value, allowed)
    return base64.b64encode(raw).decode()


def _ipv4_network(key: str, value: Any, allowed: str) -> ipaddress.IPv4Network:
    text = _require_str(key, value, 18)
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}", text):
        raise SettingsError(key, value, allowed)
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise SettingsError(key, value, allowed) from None


def _ipv4_address(key: str, value: Any, allowed: str) -> ipaddress.IPv4Address:
    text = _require_str(key, value, 15)
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", text):
        raise SettingsError(key, value, allowed)
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise SettingsError(key, value, allowed) from None


def _private_network(key: str, value: Any) -> ipaddress.IPv4Network:
    net = _ipv4_network(key, value, "an IPv4 network in CIDR form, e.g. 10.10.0.0/16")
    if not _is_rfc1918(net) or net.prefixlen > 28:
        raise SettingsError(key, value, "a private (RFC 1918) IPv4 network of prefix /28 or wider")
    return net


def _hhmm_minute(key: str, value: Any, allowed: str) -> int:
    """Minutes after midnight of an ASCII HH:MM."""
    match = _HHMM_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise SettingsError(key, value, allowed)
    return int(match.group(1)) * 60 + int(match.group(2))


def _maintenance_window(key: str, value: Any) -> MaintenanceWindow:
    allowed = f"a daily UTC window HH:MM-HH:MM of at least {MIN_WINDOW_MINUTES} minutes, e.g. 03:00-05:00"
    match = _WINDOW_RE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise SettingsError(key, value, allowed)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    window = MaintenanceWindow(start_minute=h1 * 60 + m1, end_minute=h2 * 60 + m2)
    if window.duration_minutes < MIN_WINDOW_MINUTES:
        raise SettingsError(key, value, allowed)
    return window


def _vault_address(key: str, value: Any) -> str:
    allowed = "an https:// URL of the Vault server, e.g. https://vault.example.net:8200"
    if value is None:
        raise SettingsError(key, value, allowed)
    url = _url(key, value, allowed)
    if url.scheme != "https" or url.path not in ("", "/") or url.query:
        raise SettingsError(key, value, allowed)
    return f"https://{url.host}" + (f":{url.port}" if url.port is not None else "")


def _unique(key: str, values: Sequence[str], what: str) -> None:
    """No two values equal ignoring case (resource names and DNS are case-insensitive)."""
    seen: set[str] = set()
    for v in values:
        if v.casefold() in seen:
            raise SettingsError(key, v, f"distinct {what}, ignoring case (this one appears twice)")
        seen.add(v.casefold())


def _email(key: str, value: Any) -> str:
    """An e-mail address: a plain dot-atom local part and a DNS name (lowercased)."""
    allowed = "an e-mail address such as ops@example.com (letters, digits, '.', '_', '%', '+', '-' before the @)"
    text = _require_str(key, value, 254)
    local, at, domain = text.rpartition("@")
    if not at or len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local):
        raise SettingsError(key, value, allowed)
    try:
        host = _hostname(key, domain)
    except SettingsError:
        raise SettingsError(key, value, allowed) from None
    return f"{local}@{host}"


@dataclass(frozen=True)
class Url:
    """A parsed URL without credentials; :attr:`text` is its re-serialised form."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str

    @property
    def text(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.host}{port}{self.path}{query}"


def _url(key: str, value: Any, allowed: str) -> Url:
    """Parse ``scheme://host[:port][/path][?query]``; refuses credentials in the userinfo or
    the query (without showing them), fragments and anything outside a strict character set."""
    text = _require_str(key, value, 2048)
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,15}", scheme):
        raise SettingsError(key, value, allowed)
    authority_end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        raise SettingsError(key, Hidden("(a URL with credentials; not shown)"),
                            allowed + "; no user or password in the URL (secrets go in with "
                            "`pulumi config set --secret`)")
    path, _, query = tail.partition("?")
    if "#" in tail or not _URL_PATH_RE.fullmatch(path) or not _URL_QUERY_RE.fullmatch(query):
        raise SettingsError(key, Hidden("(a URL with a fragment or characters outside RFC 3986; not shown)"), allowed)
    for param in filter(None, re.split("[&;]", query)):
        if _CREDENTIAL_PARAM_RE.search(param.partition("=")[0]):
            raise SettingsError(key, Hidden("(a URL with a credential in its query; not shown)"),
                                allowed + "; no credentials in the query (secrets go in with "
                                "`pulumi config set --secret`)")
    host_text, colon, port_text = authority.rpartition(":") if ":" in authority else (authority, "", "")
    port = None
    if colon:
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
            raise SettingsError(key, value, allowed + " (a port from 1 to 65535)")
        port = int(port_text)
    try:
        host = str(_ipv4_address(key, host_text, allowed)) if re.fullmatch(r"[0-9.]+", host_text) \
            else _hostname(key, host_text)
    except SettingsError:
        raise SettingsError(key, value, allowed) from None
    return Url(scheme=scheme.lower(), host=host, port=port, path=path, query=query)
