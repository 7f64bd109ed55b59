"""The whole first-boot configuration as one ``#cloud-config`` document.

It becomes the Hetzner server's user_data: readable through the cloud API
(so it holds no secret) and a change replaces the server (so it is a
deterministic function of the settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from components.settings import Settings

from .backup import BACKUP_PACKAGES, BACKUP_TIMERS, backup_write_files
from .boot_secrets import render_boot_config, render_secret_fetch_script
from .bundle import BUNDLE_HEADER, BUNDLE_UNIT_NAME, BUNDLE_UNIT_PATH, BundlePin, bundle_pin, render_bundle_unit
from .data_volume import render_data_volume_script, render_data_volume_unit
from .docker import DOCKER_PACKAGES, docker_runcmd, docker_write_files
from .fail2ban import (
    render_fail2ban_alert_action,
    render_fail2ban_jail,
    render_fail2ban_odoo_filter,
)
from .hostkey import render_hostkey_script, render_hostkey_unit
from .nftables import render_nftables
from .paths import (
    APT_TIMER_OVERRIDE_PATH,
    BOOT_CONFIG_PATH,
    DATA_VOLUME_SCRIPT_PATH,
    DATA_VOLUME_UNIT_NAME,
    DATA_VOLUME_UNIT_PATH,
    FAIL2BAN_ALERT_ACTION_PATH,
    FAIL2BAN_JAIL_PATH,
    FAIL2BAN_ODOO_FILTER_PATH,
    HOSTKEY_SCRIPT_PATH,
    HOSTKEY_UNIT_NAME,
    HOSTKEY_UNIT_PATH,
    NFTABLES_PATH,
    ODOO_LOG_PATH,
    ROOT_OWNER,
    SECRET_FETCH_PATH,
    SSHD_DROPIN_PATH,
    UNATTENDED_UPGRADES_PATH,
    WIREGUARD_CONFIG_PATH,
    WIREGUARD_INTERFACE,
)
from .sshd import render_sshd_dropin
from .updates import render_apt_timer_override, render_unattended_upgrades
from .wireguard import render_wireguard_config

HETZNER_USER_DATA_LIMIT = 32 * 1024
"""Hetzner refuses user_data above 32 KiB."""

PACKAGES = (
    "curl", "nftables", "fail2ban", "python3-systemd", "unattended-upgrades", "cryptsetup", "wireguard-tools",
    *BACKUP_PACKAGES,
    *DOCKER_PACKAGES,
)


def _file(path: str, content: str, permissions: str, owner: str = ROOT_OWNER) -> dict[str, Any]:
    return {"path": path, "owner": owner, "permissions": permissions, "content": content}


def bundle_files(settings: Settings) -> list[dict[str, Any]]:
    """The host bundle's files: everything the host gets after its Vault login, plain text."""
    admin = settings.admin_user
    return [
        _file(SSHD_DROPIN_PATH, render_sshd_dropin(settings), "0644"),
        _file(HOSTKEY_SCRIPT_PATH, render_hostkey_script(), "0700"),
        _file(HOSTKEY_UNIT_PATH, render_hostkey_unit(), "0644"),
        # Here, not in user-data's users: user-data stays the same size whatever the team's size.
        _file(f"/home/{admin}/.ssh/authorized_keys", "".join(f"{key.public_key}\n" for key in settings.ssh_keys),
              "0600", owner=f"{admin}:{admin}"),
        _file(NFTABLES_PATH, render_nftables(settings), "0755"),
        _file(FAIL2BAN_JAIL_PATH, render_fail2ban_jail(settings), "0644"),
        _file(FAIL2BAN_ODOO_FILTER_PATH, render_fail2ban_odoo_filter(), "0644"),
        _file(FAIL2BAN_ALERT_ACTION_PATH, render_fail2ban_alert_action(), "0644"),
        # Empty, so the Odoo jail can start on first boot, before Odoo runs. The installer only
        # creates an empty file: a later boot leaves Odoo's log (and its owner) alone.
        _file(ODOO_LOG_PATH, "", "0640", owner="root:adm"),
        _file(UNATTENDED_UPGRADES_PATH, render_unattended_upgrades(settings), "0644"),
        _file(APT_TIMER_OVERRIDE_PATH, render_apt_timer_override(settings), "0644"),
        _file(DATA_VOLUME_SCRIPT_PATH, render_data_volume_script(settings), "0700"),
        _file(DATA_VOLUME_UNIT_PATH, render_data_volume_unit(settings), "0644"),
        _file(WIREGUARD_CONFIG_PATH, render_wireguard_config(settings), "0600"),
        *backup_write_files(settings),
        *docker_write_files(settings),
    ]


def bundle_activation(settings: Settings) -> list[list[str]]:
    """What the installer runs after writing a changed bundle (first boot, or a repaired file)."""
    return [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "nftables.service"],
        ["systemctl", "restart", "nftables.service"],
        # sshd and the apt timer started before the bundle arrived: they re-read their files.
        ["systemctl", "reload-or-restart", "ssh.service"],
        # The Pulumi-made host key replaces the generated ones (it restarts sshd itself);
        # --no-block: it is ordered after the bundle unit, which is running these commands.
        ["systemctl", "enable", "--now", "--no-block", HOSTKEY_UNIT_NAME],
        ["systemctl", "restart", "apt-daily-upgrade.timer"],
        ["systemctl", "enable", "--now", "--no-block", DATA_VOLUME_UNIT_NAME],
        ["systemctl", "enable", "--now", "--no-block", f"wg-quick@{WIREGUARD_INTERFACE}.service"],
        ["systemctl", "enable", "fail2ban.service"],
        ["systemctl", "restart", "fail2ban.service"],
        ["systemctl", "enable", "--now", *BACKUP_TIMERS],
        *docker_runcmd(settings),
    ]


def first_boot_files(settings: Settings, pin: BundlePin, *, vault_address: str | None = None
                     ) -> list[dict[str, Any]]:
    """What user-data writes: the Vault coordinates with the bundle pin, the fetcher and its unit."""
    return [
        _file(BOOT_CONFIG_PATH, render_boot_config(settings, vault_address=vault_address, bundle=pin), "0644"),
        _file(SECRET_FETCH_PATH, render_secret_fetch_script(), "0700"),
        _file(BUNDLE_UNIT_PATH, render_bundle_unit(), "0644"),
    ]


def write_files(settings: Settings, *, vault_address: str | None = None) -> list[dict[str, Any]]:
    """Every file the host gets: user-data's, then the bundle's."""
    host = render_host(settings, vault_address=vault_address)
    return [*first_boot_files(settings, host.pin, vault_address=vault_address), *bundle_files(settings)]


def cloud_config(settings: Settings, pin: BundlePin, *, vault_address: str | None = None) -> dict[str, Any]:
    """The cloud-config as plain data (before YAML)."""
    return {
        "ssh_pwauth": False,
        "disable_root": True,
        # No key here: they come with the bundle (authorized_keys).
        "users": [{
            "name": settings.admin_user,
            "groups": "sudo",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,
            "shell": "/bin/bash",
        }],
        # Leave the locale alone: setting one runs locale-gen/update-locale,
        # which minimal images lack, and cloud-init's locale module then fails.
        # cloud-init 22.4's schema wants a string here; "false" (util.is_false)
        # makes the module skip itself.
        "locale": "false",
        # systemd timers and unattended-upgrades' reboot time are local time.
        "timezone": "Etc/UTC",
        "package_update": True,
        "package_upgrade": True,
        "packages": list(PACKAGES),
        "write_files": first_boot_files(settings, pin, vault_address=vault_address),
        # The bundle waits for Vault: it installs without blocking cloud-init.
        "runcmd": [
            _Command(["systemctl", "daemon-reload"]),
            _Command(["systemctl", "enable", "--now", "--no-block", BUNDLE_UNIT_NAME]),
        ],
    }


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """SafeDumper writing multi-line strings as literal blocks.

    The libyaml-backed dumper writes the same bytes about 15x faster, which
    matters when preflight renders a whole fleet; the pure-Python one is the
    fallback where PyYAML was built without libyaml."""


class _Command(list[str]):
    """A runcmd entry, written in flow style: ``[systemctl, daemon-reload]``."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(
    _Command, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


@dataclass(frozen=True)
class HostConfiguration:
    user_data: str
    """The ``#cloud-config``: first boot, the Vault fetcher and the bundle pin."""
    bundle: str
    """The host bundle (:func:`render_bundle`): every other host file, plain text."""
    pin: BundlePin


def _yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=False,
                     width=4096)


def render_bundle(settings: Settings) -> str:
    """The host bundle: YAML with ``files`` (cloud-init write_files entries, plain text) and
    ``activate`` (commands run after writing). Deterministic: its SHA-256 is pinned in user-data."""
    return BUNDLE_HEADER + _yaml({"files": bundle_files(settings),
                                  "activate": [_Command(c) for c in bundle_activation(settings)]})


def render_host(settings: Settings, *, vault_address: str | None = None, bundle_url: str | None = None,
                sns_endpoint: str | None = None) -> HostConfiguration:
    """user-data and bundle together. ``bundle_url`` and ``sns_endpoint`` override where the host
    fetches the bundle and reports a refused one (stand-ins in tests); ``vault_address`` overrides
    ``settings.vault_address``."""
    bundle = render_bundle(settings)
    pin = bundle_pin(settings, bundle, url=bundle_url, sns_endpoint=sns_endpoint)
    user_data = "#cloud-config\n" + _yaml(cloud_config(settings, pin, vault_address=vault_address))
    return HostConfiguration(user_data=user_data, bundle=bundle, pin=pin)


def render_cloud_config(settings: Settings, *, vault_address: str | None = None) -> str:
    """The ``#cloud-config`` user_data for the client's host (see :func:`render_host`)."""
    return render_host(settings, vault_address=vault_address).user_data
