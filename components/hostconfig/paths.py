"""Where the rendered files live on the host, and the names that tie them together.

Tests and other components (policy pack, Pulumi host component) refer to
these constants instead of repeating the strings.
"""

from __future__ import annotations

SSHD_DROPIN_PATH = "/etc/ssh/sshd_config.d/00-odoo-hosting.conf"
"""sshd keeps the FIRST value it reads and includes drop-ins in lexical
order, so ``00-`` wins over cloud-init's ``50-cloud-init.conf`` (ACC-01)."""

NFTABLES_PATH = "/etc/nftables.conf"
"""Loaded by Debian's ``nftables.service`` (ACC-02, TLS-02)."""
NFTABLES_TABLE = "odoo_hosting"
"""Our own ``inet`` table; we never flush the whole ruleset (Docker, fail2ban)."""

FAIL2BAN_JAIL_PATH = "/etc/fail2ban/jail.d/00-odoo-hosting.local"
"""``jail.d/*.local`` is read after Debian's ``jail.d/defaults-debian.conf`` (ACC-04)."""
FAIL2BAN_ODOO_FILTER_NAME = "odoo-login"
FAIL2BAN_ODOO_FILTER_PATH = f"/etc/fail2ban/filter.d/{FAIL2BAN_ODOO_FILTER_NAME}.conf"
FAIL2BAN_ALERT_ACTION_NAME = "odoo-hosting-alert"
FAIL2BAN_ALERT_ACTION_PATH = f"/etc/fail2ban/action.d/{FAIL2BAN_ALERT_ACTION_NAME}.conf"
"""Counts bans and reports a burst to the incident channel (INC-01)."""
ODOO_LOG_DIR = "/var/log/odoo"
ODOO_LOG_PATH = f"{ODOO_LOG_DIR}/odoo.log"
"""Odoo (in its container) must log here through a bind mount for the jail to see failures."""

UNATTENDED_UPGRADES_PATH = "/etc/apt/apt.conf.d/52odoo-hosting-unattended-upgrades"
"""After Debian's ``50unattended-upgrades`` and ``20auto-upgrades``: our values win (SWU-01)."""
APT_TIMER_OVERRIDE_PATH = "/etc/systemd/system/apt-daily-upgrade.timer.d/odoo-hosting.conf"

DATA_VOLUME_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-data-volume"
DATA_VOLUME_UNIT_NAME = "odoo-hosting-data.service"
DATA_VOLUME_UNIT_PATH = f"/etc/systemd/system/{DATA_VOLUME_UNIT_NAME}"
DATA_VOLUME_DEVICE_GLOB = "/dev/disk/by-id/scsi-0HC_Volume_*"
"""How Hetzner names attached volumes; the volume id is unknown at render time."""
DATA_VOLUME_MAPPER_NAME = "odoo-data"
DATA_MOUNT_POINT = "/srv/odoo-data"
"""Where client data lives (DSK-01); the app binds its subdirectories."""
DATA_SUBDIRS = ("postgresql", "filestore", "backup-staging")

WIREGUARD_INTERFACE = "wg0"
WIREGUARD_CONFIG_PATH = f"/etc/wireguard/{WIREGUARD_INTERFACE}.conf"

NOTIFY_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-notify"
"""Publishes to the client's incident channel (INC-01): backup failures, bursts of fail2ban bans."""

SECRET_FETCH_PATH = "/usr/local/sbin/odoo-hosting-secret"
"""``odoo-hosting-secret NAME`` prints one boot secret, fetched from Vault (SEC-01)."""
BOOT_CONFIG_PATH = "/etc/odoo-hosting/boot.json"
"""Non-secret Vault coordinates for the secret fetcher."""
RUNTIME_DIR = "/run/odoo-hosting"
"""tmpfs: nothing in it survives a reboot."""
WRAPPED_SECRET_ID_PATH = f"{RUNTIME_DIR}/secret-id.wrapped"
"""The delivery seam (SEC-02): a response-wrapped, single-use AppRole
secret-id (the wrapping token) must be placed
here, on tmpfs, by the secrets delivery (not built yet: the secrets issue
builds it). The fetcher waits for it, unwraps it once and deletes it."""
VAULT_TOKEN_CACHE_PATH = f"{RUNTIME_DIR}/vault-token"
"""The AppRole client token, cached on tmpfs (0600) for the other boot secrets."""

BUNDLE_CACHE_PATH = "/var/lib/odoo-hosting/bundle.yaml"
"""Root disk: the verified host bundle, so a reboot needs no S3 (checked against the pin at each boot)."""

VAULT_KV_MOUNT = "odoo-hosting"
DEFAULT_VAULT_ADDRESS = "https://vault.internal.odoo-hosting.example:8200"
"""Used only when neither the caller nor the settings give an address."""

SECRET_NAME_LUKS_KEY = "luks-key"
SECRET_NAME_WIREGUARD_KEY = "wireguard-private-key"
SECRET_NAME_SSH_HOST_KEY = "ssh-host-ed25519-key"

SSH_HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
"""The one host key sshd offers: made by Pulumi, fetched from Vault (components/hostkeys.py)."""
HOSTKEY_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-hostkey"
HOSTKEY_UNIT_NAME = "odoo-hosting-hostkey.service"
HOSTKEY_UNIT_PATH = f"/etc/systemd/system/{HOSTKEY_UNIT_NAME}"
BUNDLE_UNIT_NAME = "odoo-hosting-bundle.service"

ROOT_OWNER = "root:root"
