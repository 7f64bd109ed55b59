"""Docker on the client host, for the app plane (ISO-02), and the app-secrets hand-over.

* ``docker.io`` from Debian (security updates through unattended-upgrades),
  with a hardened ``daemon.json``: ``no-new-privileges`` for every container
  by default, ``live-restore`` (a daemon upgrade does not stop Odoo),
  bounded json-file logs, no userland proxy, Docker managing its own
  iptables(-nft) rules, no inter-container traffic on the default bridge.
* The admin user joins the ``docker`` group: the Pulumi Docker provider
  reaches the daemon as ``ssh://<adminUser>@<VPN address>`` (the user already
  has passwordless sudo, so this grants nothing new).
* ``odoo-hosting-app-secrets.service``: after the data volume is open and
  before Docker starts, fetches the app's secrets (DB password, Odoo's
  master password, the VPN-only origin key and certificate) from Vault with
  ``odoo-hosting-secret`` onto tmpfs (``/run/odoo-hosting/app``), one file
  each, owned by the container user that reads it, and prepares the data
  directories
  on the LUKS volume. Docker requires it, so no container starts without its
  secrets or on the unencrypted root disk.
"""

from __future__ import annotations

import json

from components.app.secrets import (
    APP_SECRETS_DIR,
    DB_PASSWORD,
    HOST_FILES,
    ODOO_ADMIN_PASSWORD,
    ORIGIN_CERT,
    ORIGIN_KEY,
    SMTP_PASSWORD,
)
from components.settings import Settings

from .paths import (
    DATA_MOUNT_POINT,
    DATA_VOLUME_UNIT_NAME,
    ODOO_LOG_DIR,
    ODOO_LOG_PATH,
    SECRET_FETCH_PATH,
    WIREGUARD_INTERFACE,
)

DOCKER_PACKAGES = ("docker.io",)
DOCKER_DAEMON_CONFIG_PATH = "/etc/docker/daemon.json"
APP_SECRETS_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-app-secrets"
APP_SECRETS_UNIT_NAME = "odoo-hosting-app-secrets.service"
APP_SECRETS_UNIT_PATH = f"/etc/systemd/system/{APP_SECRETS_UNIT_NAME}"
ODOO_UID = 101
"""The ``odoo`` user of the official Odoo image (check when the image digest is refreshed)."""
POSTGRES_UID = 999
"""The ``postgres`` user of the official PostgreSQL (Debian) image."""
DAEMON_CONFIG = {
    "no-new-privileges": True,
    "live-restore": True,
    "userland-proxy": False,
    "iptables": True,
    "icc": False,
    "log-driver": "json-file",
    "log-opts": {"max-size": "20m", "max-file": "5"},
}


def render_docker_daemon_config() -> str:
    return json.dumps(DAEMON_CONFIG, indent=2, sort_keys=True) + "\n"


def render_app_secrets_script(settings: Settings) -> str:
    # (Vault name, owner): each file readable only by the container user that needs it; the
    # database container's root reads the DB password through its DAC_OVERRIDE capability.
    odoo = f"{ODOO_UID}:{ODOO_UID}"
    files = [(DB_PASSWORD, odoo), (ODOO_ADMIN_PASSWORD, odoo)]
    if "smtpPassword" in settings.secrets_set:
        files.append((SMTP_PASSWORD, odoo))
    if not settings.public:
        files += [(ORIGIN_KEY, "0:0"), (ORIGIN_CERT, "0:0")]
    fetches = "\n".join(f"f {name} {HOST_FILES[name]} {owner}" for name, owner in files)
    return f"""\
#!/bin/sh
# {APP_SECRETS_SCRIPT_PATH}: managed by odoo-hosting (SEC-01, DSK-01).
# App secrets from Vault onto tmpfs, data directories on the LUKS volume; before Docker.
set -eu
umask 077
d={APP_SECRETS_DIR}
install -d -m 0711 "$d"
f() {{ {SECRET_FETCH_PATH} "$1" > "$d/.t" && [ -s "$d/.t" ] && chown "$3" "$d/.t" && chmod 0400 "$d/.t" && mv -f "$d/.t" "$d/$2"; }}
{fetches}
mountpoint -q {DATA_MOUNT_POINT}
install -d -m 0700 {DATA_MOUNT_POINT}/proxy
install -d -m 0700 -o {POSTGRES_UID} -g {POSTGRES_UID} {DATA_MOUNT_POINT}/postgresql
install -d -m 0750 -o {ODOO_UID} -g {ODOO_UID} {DATA_MOUNT_POINT}/filestore
install -d -m 0750 -o {ODOO_UID} -g adm {ODOO_LOG_DIR}
touch {ODOO_LOG_PATH}
chown {ODOO_UID}:adm {ODOO_LOG_PATH}
"""  # noqa: E501  (a template: its long lines are the rendered script's)


def render_app_secrets_unit() -> str:
    return f"""\
# {APP_SECRETS_UNIT_PATH}: managed by odoo-hosting (SEC-01).
[Unit]
Description=Fetch the Odoo app's secrets from Vault onto tmpfs
Requires={DATA_VOLUME_UNIT_NAME}
# Docker starts after this unit, so also after the tunnel: a VPN-only proxy
# publishes its ports on the wg0 address, which must exist by then.
After={DATA_VOLUME_UNIT_NAME} network-online.target wg-quick@{WIREGUARD_INTERFACE}.service
Wants=network-online.target wg-quick@{WIREGUARD_INTERFACE}.service
Before=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={APP_SECRETS_SCRIPT_PATH}
ExecStop=/bin/rm -rf {APP_SECRETS_DIR}
TimeoutStartSec=15min

[Install]
WantedBy=multi-user.target
RequiredBy=docker.service
"""


def docker_write_files(settings: Settings) -> list[dict[str, str]]:
    return [
        {"path": DOCKER_DAEMON_CONFIG_PATH, "owner": "root:root", "permissions": "0644",
         "content": render_docker_daemon_config()},
        {"path": APP_SECRETS_SCRIPT_PATH, "owner": "root:root", "permissions": "0700",
         "content": render_app_secrets_script(settings)},
        {"path": APP_SECRETS_UNIT_PATH, "owner": "root:root", "permissions": "0644",
         "content": render_app_secrets_unit()},
    ]


def docker_runcmd(settings: Settings) -> list[list[str]]:
    return [
        ["usermod", "-aG", "docker", settings.admin_user],
        ["systemctl", "enable", "--now", "--no-block", APP_SECRETS_UNIT_NAME],
        # Docker started (with its defaults) before the bundle brought daemon.json.
        ["systemctl", "try-restart", "--no-block", "docker.service"],
    ]
