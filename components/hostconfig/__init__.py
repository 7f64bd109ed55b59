"""Host configuration: plain settings in, first-boot text out.

Pure renderers for every file the client's host gets (sshd, nftables,
fail2ban, unattended-upgrades, LUKS data volume, WireGuard, the Vault
boot-secret fetcher) and :func:`render_host`, which splits them into the
server's ``#cloud-config`` user_data (first boot: the Vault fetcher and the
bundle pin) and the host bundle (everything else, see :mod:`.bundle`).
"""

from . import paths
from .boot_secrets import (
    VAULT_NETWORK_WAIT_SECONDS,
    WRAPPED_SECRET_ID_WAIT_SECONDS,
    approle_role_id,
    boot_kv_path,
    render_boot_config,
    render_secret_fetch_script,
    resolve_vault_address,
)
from .bundle import BUNDLE_HEADER, BundlePin, bundle_key, bundle_sha256
from .cloud_config import (
    HETZNER_USER_DATA_LIMIT,
    PACKAGES,
    HostConfiguration,
    bundle_files,
    cloud_config,
    render_bundle,
    render_cloud_config,
    render_host,
    write_files,
)
from .data_volume import (
    LUKS_CIPHER,
    LUKS_HASH,
    LUKS_KEY_BITS,
    LUKS_PBKDF,
    LUKS_TYPE,
    render_data_volume_script,
    render_data_volume_unit,
)
from .fail2ban import (
    BAN_ALERT_THRESHOLD,
    BAN_ALERT_WINDOW_SECONDS,
    BAN_TIME,
    FIND_TIME,
    MAX_RETRY,
    render_fail2ban_alert_action,
    render_fail2ban_jail,
    render_fail2ban_odoo_filter,
)
from .nftables import render_nftables
from .paths import *  # noqa: F403  (the path constants are part of the interface)
from .sshd import render_sshd_dropin, sshd_options
from .updates import render_apt_timer_override, render_unattended_upgrades
from .wireguard import render_wireguard_config

__all__ = [
    "VAULT_NETWORK_WAIT_SECONDS", "WRAPPED_SECRET_ID_WAIT_SECONDS", "approle_role_id", "boot_kv_path",
    "render_boot_config", "render_secret_fetch_script", "resolve_vault_address", "BUNDLE_HEADER", "BundlePin",
    "bundle_key", "bundle_sha256", "HETZNER_USER_DATA_LIMIT", "PACKAGES", "HostConfiguration", "bundle_files",
    "cloud_config", "render_bundle", "render_cloud_config", "render_host", "write_files", "LUKS_CIPHER", "LUKS_HASH",
    "LUKS_KEY_BITS", "LUKS_PBKDF", "LUKS_TYPE", "render_data_volume_script", "render_data_volume_unit",
    "BAN_ALERT_THRESHOLD", "BAN_ALERT_WINDOW_SECONDS", "BAN_TIME", "FIND_TIME", "MAX_RETRY",
    "render_fail2ban_alert_action", "render_fail2ban_jail", "render_fail2ban_odoo_filter", "render_nftables",
    "render_sshd_dropin", "sshd_options", "render_apt_timer_override", "render_unattended_upgrades",
    "render_wireguard_config",
]
__all__ += [name for name in vars(paths) if name.isupper()]  # every path constant, as paths.py lists them
