"""The boot-secrets seam on the host (SEC-01, SEC-02).

``odoo-hosting-secret NAME`` fetches one secret from Vault at run time;
``/etc/odoo-hosting/boot.json`` holds only non-secret coordinates. How the
response-wrapped secret-id reaches :data:`~.paths.WRAPPED_SECRET_ID_PATH` is
the delivery seam the secrets work builds.
"""

from __future__ import annotations

import json
from importlib import resources

from components.settings import Settings

from .bundle import BundlePin
from .paths import (
    BOOT_CONFIG_PATH,
    BUNDLE_CACHE_PATH,
    DEFAULT_VAULT_ADDRESS,
    SECRET_FETCH_PATH,
    VAULT_KV_MOUNT,
    VAULT_TOKEN_CACHE_PATH,
    WRAPPED_SECRET_ID_PATH,
)

WRAPPED_SECRET_ID_WAIT_SECONDS = 600
"""How long the fetcher waits for the wrapped secret-id to be delivered."""
VAULT_NETWORK_WAIT_SECONDS = 300
"""How long the fetcher retries while Vault is unreachable (network coming up)."""


def approle_role_id(client_id: str) -> str:
    """The host's AppRole role_id (set explicitly on the AppRole by the secrets work)."""
    return f"{client_id}-host"


def bootstrap_role_id(client_id: str) -> str:
    """The address-bound AppRole a booting host uses to obtain a wrapped secret-id."""
    return f"{client_id}-bootstrap"


def boot_kv_path(client_id: str) -> str:
    """Path inside :data:`VAULT_KV_MOUNT` of the host's boot secrets."""
    return f"clients/{client_id}/boot"


def render_secret_fetch_script() -> str:
    text = resources.files(__package__).joinpath("assets", "odoo-hosting-secret.py").read_text(encoding="utf-8")
    return (text.replace("@SCRIPT_PATH@", SECRET_FETCH_PATH).replace("@BOOT_CONFIG_PATH@", BOOT_CONFIG_PATH)
            .replace("@BUNDLE_CACHE_PATH@", BUNDLE_CACHE_PATH))


def resolve_vault_address(settings: Settings, vault_address: str | None = None) -> str:
    """An explicit address wins, then the stack setting, then the module default."""
    return vault_address or getattr(settings, "vault_address", None) or DEFAULT_VAULT_ADDRESS


def render_boot_config(settings: Settings, *, vault_address: str | None = None,
                       bundle: BundlePin | None = None) -> str:
    """``bundle``: the :class:`~.bundle.BundlePin` the host installs (``--bundle``)."""
    config = {
        "vault_address": resolve_vault_address(settings, vault_address),
        "role_id": approle_role_id(settings.client_id),
        # No secret-id delivered: the host asks Vault for a wrapped one through
        # this address-bound role (components/secrets.py, README "secret-zero").
        "bootstrap_role_id": bootstrap_role_id(settings.client_id),
        "kv_mount": VAULT_KV_MOUNT,
        "kv_path": boot_kv_path(settings.client_id),
        "kv_paths": {"backup": f"clients/{settings.client_id}/backup"},
        "wrapped_secret_id_path": WRAPPED_SECRET_ID_PATH,
        "token_cache_path": VAULT_TOKEN_CACHE_PATH,
        "wait_seconds": WRAPPED_SECRET_ID_WAIT_SECONDS,
        "network_wait_seconds": VAULT_NETWORK_WAIT_SECONDS,
    }
    if bundle is not None:
        config["bundle"] = bundle.as_json()
        if bundle.sns_endpoint:
            config["sns_endpoint"] = bundle.sns_endpoint
    return json.dumps(config, indent=1, sort_keys=True) + "\n"
