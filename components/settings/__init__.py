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

import json
from collections.abc import Mapping
from typing import Any

import pulumi

from .fields import parse_ssh_public_key, parse_wireguard_key
from .model import (
    Backup,
    Ldap,
    MaintenanceWindow,
    OAuthProvider,
    OutsideConnection,
    Settings,
    SettingsError,
    SshKey,
    Sso,
    Vpn,
    VpnPeer,
)
from .parse import parse_settings
from .schema import (
    CONNECTION_SCHEMES,
    EU_LOCATIONS,
    EXPOSURES,
    IMAGES,
    KEYS,
    MAX_CREDENTIAL_ROTATION_DAYS,
    MAX_DATA_VOLUME_GB,
    MIN_DATA_VOLUME_GB,
    MIN_RSA_BITS,
    MIN_WINDOW_MINUTES,
    NAMESPACE,
    NETWORK_ZONE,
    REQUIRED,
    SCHEMA,
    SECRET_KEYS,
    SERVER_SIZES,
    SERVER_TYPES,
    STARTTLS_KINDS,
    VPN_DEFAULTS,
    Key,
)

__all__ = [
    "Backup", "CONNECTION_SCHEMES", "EU_LOCATIONS", "EXPOSURES", "IMAGES", "KEYS", "Key", "Ldap",
    "MAX_CREDENTIAL_ROTATION_DAYS", "MAX_DATA_VOLUME_GB", "MIN_DATA_VOLUME_GB", "MIN_RSA_BITS", "MIN_WINDOW_MINUTES",
    "MaintenanceWindow", "NAMESPACE", "NETWORK_ZONE", "OAuthProvider", "OutsideConnection", "REQUIRED", "SCHEMA",
    "SECRET_KEYS", "SERVER_SIZES", "SERVER_TYPES", "STARTTLS_KINDS", "Settings", "SettingsError", "SshKey", "Sso",
    "VPN_DEFAULTS", "Vpn", "VpnPeer", "load_secret", "load_settings", "parse_settings", "parse_ssh_public_key",
    "parse_wireguard_key",
]


def _decode(name: str, text: Any) -> Any:
    """Config values arrive as strings; structured ones as JSON text."""
    structured = name in KEYS and KEYS[name].structured
    if not structured or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise SettingsError(
            name, text, "a YAML list/object in the stack file (or JSON with `pulumi config set --path`)") from None


def load_secret(key: str) -> pulumi.Output[str] | None:
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
    # Which secret settings really are Pulumi secrets (`pulumi config set --secret`); a plain one is refused.
    secure = frozenset(k for k in SECRET_KEYS if pulumi.runtime.is_config_secret(f"{prefix}{k}"))
    return parse_settings(raw, secure=secure)
