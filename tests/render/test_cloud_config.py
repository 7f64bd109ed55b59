"""The #cloud-config document as a whole: shape, determinism, no secrets."""

from __future__ import annotations

import json
import re

import yaml

from components import hostconfig
from components.hostconfig import (
    BOOT_CONFIG_PATH, DATA_VOLUME_UNIT_NAME, HETZNER_USER_DATA_LIMIT, PACKAGES, ROOT_OWNER,
    render_cloud_config, write_files,
)
from tests.conftest import example_settings

def _doc(settings) -> dict:
    return yaml.safe_load(render_cloud_config(settings))


def test_first_line_is_cloud_config_header(settings):
    assert render_cloud_config(settings).split("\n", 1)[0] == "#cloud-config"


def test_is_yaml_mapping(settings):
    assert isinstance(_doc(settings), dict)


def test_same_settings_give_same_bytes(settings):
    again = example_settings("example-public" if settings.public else "example-private")
    assert render_cloud_config(settings) == render_cloud_config(again)


def test_fits_hetzner_user_data_limit(settings):
    assert len(render_cloud_config(settings).encode()) < HETZNER_USER_DATA_LIMIT


def test_public_and_private_differ(public_settings, private_settings):
    assert render_cloud_config(public_settings) != render_cloud_config(private_settings)


def test_ssh_is_key_only_and_root_disabled(settings):
    doc = _doc(settings)
    assert doc["ssh_pwauth"] is False
    assert doc["disable_root"] is True
    (user,) = doc["users"]
    assert user["name"] == settings.admin_user
    assert user["groups"] == "sudo"
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert user["lock_passwd"] is True
    assert user["shell"] == "/bin/bash"
    assert user["ssh_authorized_keys"] == [k.public_key for k in settings.ssh_keys]


def test_packages_and_update(settings):
    doc = _doc(settings)
    assert doc["package_update"] is True
    assert set(PACKAGES) <= set(doc["packages"])
    for needed in ("nftables", "fail2ban", "python3-systemd", "unattended-upgrades", "cryptsetup", "wireguard-tools"):
        assert needed in doc["packages"]


def test_locale_module_is_skipped(settings):
    # cloud-init's util.is_false("false") skips cc_locale (no locale-gen needed).
    assert _doc(settings)["locale"] == "false"


def test_runcmd_order(settings):
    runcmd = [" ".join(c) for c in _doc(settings)["runcmd"]]
    order = ["daemon-reload", "nftables.service", DATA_VOLUME_UNIT_NAME, "wg-quick@wg0.service", "restart fail2ban"]
    positions = [next(i for i, c in enumerate(runcmd) if needle in c) for needle in order]
    assert positions == sorted(positions)
    assert len(runcmd) <= 9  # + docker group for the admin user, app-secrets unit


def test_every_file_has_explicit_owner_and_mode(settings):
    files = write_files(settings)
    assert files == _doc(settings)["write_files"]
    paths = [f["path"] for f in files]
    assert len(paths) == len(set(paths))
    for f in files:
        assert set(f) - {"encoding"} == {"path", "owner", "permissions", "content"}, f["path"]
        # Only executables are packed (gz+b64); configuration stays readable.
        assert f.get("encoding", "gz+b64") == "gz+b64" and ("encoding" not in f or f["permissions"] == "0700")
        assert re.fullmatch(r"[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*", f["owner"]), f["path"]
        assert re.fullmatch(r"0[0-7]{3}", f["permissions"]), f["path"]
        assert isinstance(f["content"], str)


def test_modes(settings):
    modes = {f["path"]: (f["owner"], f["permissions"]) for f in write_files(settings)}
    assert modes["/etc/nftables.conf"] == (ROOT_OWNER, "0755")
    assert modes["/etc/wireguard/wg0.conf"] == (ROOT_OWNER, "0600")
    assert modes["/usr/local/sbin/odoo-hosting-secret"] == (ROOT_OWNER, "0700")
    assert modes["/usr/local/sbin/odoo-hosting-data-volume"] == (ROOT_OWNER, "0700")
    assert modes["/etc/ssh/sshd_config.d/00-odoo-hosting.conf"] == (ROOT_OWNER, "0644")
    assert modes["/var/log/odoo/odoo.log"][1] == "0640"


def test_multiline_content_is_literal_block(settings):
    text = render_cloud_config(settings)
    assert text.count("content: |") == sum(1 for f in write_files(settings) if "\n" in f["content"])


SECRET_PATTERNS = [
    re.compile(r"PrivateKey\s*="),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(?:hvs|hvb|s)\.[A-Za-z0-9]{20,}"),  # Vault tokens
    re.compile(r"(?i)\b(changeme|placeholder|todo|fixme|secret_value|password\s*[:=]\s*\S)"),
    re.compile(r"secret_id\"?\s*[:=]\s*\"[^\"]"),
]


def test_no_secret_material(settings):
    text = render_cloud_config(settings)
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(text), pattern.pattern
    # Only public WireGuard keys of the peers may appear as 32-byte base64 strings.
    peer_keys = {p.public_key for p in settings.vpn.peers}
    for match in re.findall(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=", text):
        assert match in peer_keys


def test_boot_config_has_only_coordinates(settings):
    files = {f["path"]: f["content"] for f in write_files(settings)}
    boot = json.loads(files[BOOT_CONFIG_PATH])
    assert boot["vault_address"] == settings.vault_address
    assert boot["role_id"] == f"{settings.client_id}-host"
    assert boot["kv_mount"] == "odoo-hosting"
    assert boot["kv_path"] == f"clients/{settings.client_id}/boot"
    assert boot["wrapped_secret_id_path"] == hostconfig.WRAPPED_SECRET_ID_PATH == "/run/odoo-hosting/secret-id.wrapped"
    assert boot["token_cache_path"].startswith("/run/")
    assert not any(k in boot for k in ("secret_id", "token", "password"))


def test_vault_address_can_be_overridden(settings):
    text = render_cloud_config(settings, vault_address="https://vault.test.example:8200")
    assert "https://vault.test.example:8200" in text
    assert settings.vault_address not in text
