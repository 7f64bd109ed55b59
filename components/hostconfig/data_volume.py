"""The LUKS2 data volume: unlock script and its systemd unit (DSK-01)."""

from __future__ import annotations

from importlib import resources

from components.settings import Settings

from .paths import (
    DATA_MOUNT_POINT,
    DATA_SUBDIRS,
    DATA_VOLUME_DEVICE_GLOB,
    DATA_VOLUME_MAPPER_NAME,
    DATA_VOLUME_SCRIPT_PATH,
    DATA_VOLUME_UNIT_PATH,
    SECRET_FETCH_PATH,
    SECRET_NAME_LUKS_KEY,
)

# The production LUKS parameters (DSK-01); tests read the formatted header back.
LUKS_TYPE = "luks2"
LUKS_CIPHER = "aes-xts-plain64"
LUKS_KEY_BITS = 512
LUKS_HASH = "sha512"
LUKS_PBKDF = "argon2id"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def render_data_volume_script(settings: Settings) -> str:
    del settings  # the same on every host; the device is found by Hetzner's naming
    text = _asset("odoo-hosting-data-volume.sh")
    for marker, value in {
        "@SCRIPT_PATH@": DATA_VOLUME_SCRIPT_PATH,
        "@DEVICE_GLOB@": DATA_VOLUME_DEVICE_GLOB,
        "@MAPPER_NAME@": DATA_VOLUME_MAPPER_NAME,
        "@MOUNT_POINT@": DATA_MOUNT_POINT,
        "@SUBDIRS@": " ".join(DATA_SUBDIRS),
        "@SECRET_FETCH_PATH@": SECRET_FETCH_PATH,
        "@SECRET_NAME@": SECRET_NAME_LUKS_KEY,
    }.items():
        text = text.replace(marker, value)
    return text


def render_data_volume_unit(settings: Settings) -> str:
    del settings
    return f"""\
# {DATA_VOLUME_UNIT_PATH}: managed by odoo-hosting (DSK-01).
[Unit]
Description=Unlock and mount the encrypted client data volume
Documentation=file:{DATA_VOLUME_SCRIPT_PATH}
# The LUKS key comes from Vault over the network.
Wants=network-online.target
After=network-online.target
# Containers must never start on the unencrypted root disk: docker.service
# requires this unit (see [Install]) and starts after it.
Before=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={DATA_VOLUME_SCRIPT_PATH}
ExecStop={DATA_VOLUME_SCRIPT_PATH} --stop
# The secret fetcher may wait 10 minutes for the wrapped secret-id and
# retry an unreachable Vault for 5 more.
TimeoutStartSec=15min

[Install]
WantedBy=multi-user.target
RequiredBy=docker.service
"""
