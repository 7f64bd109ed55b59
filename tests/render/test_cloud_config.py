"""user-data and the host bundle as wholes: shape, determinism, size, no secrets, nothing encoded."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from components import hostconfig
from components.hostconfig import (
    BOOT_CONFIG_PATH,
    BUNDLE_HEADER,
    DATA_VOLUME_UNIT_NAME,
    PACKAGES,
    ROOT_OWNER,
    SECRET_FETCH_PATH,
    bundle_files,
    render_cloud_config,
    render_host,
    write_files,
)
from components.hostconfig.backup import backup_bucket_name
from components.hostconfig.bundle import BUNDLE_UNIT_NAME, BUNDLE_UNIT_PATH
from tests.conftest import example_settings, team_config

USER_DATA_BUDGET = 16 * 1024
"""Half of Hetzner's 32 KiB: what user-data may grow to, whatever the team's size."""


def _doc(settings) -> dict:
    return yaml.safe_load(render_cloud_config(settings))


def _bundle(settings) -> dict:
    return yaml.safe_load(render_host(settings).bundle)


def team_settings(stack: str, operators: int):
    return example_settings(stack, **team_config(stack, operators))


def test_first_lines_name_the_documents(settings):
    host = render_host(settings)
    assert host.user_data.split("\n", 1)[0] == "#cloud-config"
    assert host.bundle.startswith(BUNDLE_HEADER) and BUNDLE_HEADER == "#odoo-hosting-bundle v1\n"
    assert isinstance(_doc(settings), dict) and isinstance(_bundle(settings), dict)


def test_same_settings_give_same_bytes(settings):
    again = example_settings("example-public" if settings.public else "example-private")
    assert render_host(settings) == render_host(again)


def test_public_and_private_differ(public_settings, private_settings):
    assert render_host(public_settings).bundle != render_host(private_settings).bundle


@pytest.mark.parametrize("stack", ["example-private", "example-public"])
def test_user_data_size_does_not_grow_with_the_team(stack):
    """The issue's case: six operators no longer fail; fifty fit in half of Hetzner's limit,
    with exactly the bytes of a two-operator team (operators live in the bundle)."""
    sizes = {n: len(render_cloud_config(team_settings(stack, n)).encode()) for n in (2, 6, 50)}
    assert sizes[2] == sizes[6] == sizes[50] <= USER_DATA_BUDGET, sizes
    fifty = team_settings(stack, 50)
    assert render_host(fifty).bundle.count("[Peer]") == 50
    keys = next(f for f in bundle_files(fifty) if f["path"].endswith("/.ssh/authorized_keys"))
    assert len(keys["content"].splitlines()) == 50


def test_nothing_is_encoded_or_stripped(settings):
    """No file travels gz+b64 or base64, in user-data or in the bundle; scripts keep their comments."""
    host = render_host(settings)
    for text in (host.user_data, host.bundle):
        assert "encoding:" not in text
        assert not re.search(r"^\s*-?\s*encoding\s*:", text, re.M)
    files = {f["path"]: f["content"] for f in write_files(settings)}
    fetcher = files[SECRET_FETCH_PATH]
    assert fetcher.startswith("#!/usr/bin/python3\n") and '"""An error whose message is safe' in fetcher
    assert "# Vault error bodies carry messages, not secrets." in fetcher


def test_user_data_holds_first_boot_only(settings):
    """The Vault fetcher, its coordinates (with the pin) and the unit that installs the bundle."""
    doc = _doc(settings)
    assert [f["path"] for f in doc["write_files"]] == [BOOT_CONFIG_PATH, SECRET_FETCH_PATH, BUNDLE_UNIT_PATH]
    assert doc["runcmd"] == [["systemctl", "daemon-reload"],
                             ["systemctl", "enable", "--now", "--no-block", BUNDLE_UNIT_NAME]]


def test_boot_json_pins_the_bundle(settings):
    host = render_host(settings)
    boot = json.loads(next(f["content"] for f in _doc(settings)["write_files"] if f["path"] == BOOT_CONFIG_PATH))
    sha = hashlib.sha256(host.bundle.encode()).hexdigest()
    bucket = backup_bucket_name(settings.client_id)
    assert boot["bundle"] == {
        "sha256": sha, "region": settings.backup.region,
        "url": f"https://s3.{settings.backup.region}.amazonaws.com/{bucket}/host-bundle/{sha}.yaml"}
    assert host.pin.key == f"host-bundle/{sha}.yaml" and host.pin.bucket == bucket
    assert "sns_endpoint" not in boot


def test_test_overrides_reach_boot_json_only(settings):
    host = render_host(settings, bundle_url="http://10.0.2.2:9000/b/k", sns_endpoint="http://10.0.2.2:9001/")
    boot = json.loads(yaml.safe_load(host.user_data)["write_files"][0]["content"])
    assert boot["bundle"]["url"] == "http://10.0.2.2:9000/b/k" and boot["sns_endpoint"] == "http://10.0.2.2:9001/"
    assert host.bundle == render_host(settings).bundle


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
    assert "ssh_authorized_keys" not in user


def test_operator_keys_come_with_the_bundle(settings):
    files = {f["path"]: f for f in bundle_files(settings)}
    keys = files[f"/home/{settings.admin_user}/.ssh/authorized_keys"]
    assert keys["content"] == "".join(f"{k.public_key}\n" for k in settings.ssh_keys)
    assert (keys["owner"], keys["permissions"]) == (f"{settings.admin_user}:{settings.admin_user}", "0600")


def test_packages_and_update(settings):
    doc = _doc(settings)
    assert doc["package_update"] is True
    assert set(PACKAGES) <= set(doc["packages"])
    for needed in ("curl", "nftables", "fail2ban", "python3-systemd", "unattended-upgrades", "cryptsetup",
                   "wireguard-tools"):
        assert needed in doc["packages"]


def test_locale_module_is_skipped(settings):
    # cloud-init's util.is_false("false") skips cc_locale (no locale-gen needed).
    assert _doc(settings)["locale"] == "false"


def test_bundle_activation_order(settings):
    activate = [" ".join(c) for c in _bundle(settings)["activate"]]
    order = ["daemon-reload", "nftables.service", "ssh.service", DATA_VOLUME_UNIT_NAME, "wg-quick@wg0.service",
             "restart fail2ban", "docker.service"]
    positions = [next(i for i, c in enumerate(activate) if needle in c) for needle in order]
    assert positions == sorted(positions)


def test_every_file_has_explicit_owner_and_mode(settings):
    files = write_files(settings)
    host = render_host(settings)
    assert files == _doc(settings)["write_files"] + yaml.safe_load(host.bundle)["files"]
    paths = [f["path"] for f in files]
    assert len(paths) == len(set(paths))
    for f in files:
        assert set(f) == {"path", "owner", "permissions", "content"}, f["path"]
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
    host = render_host(settings)
    assert host.user_data.count("content: |") == sum(1 for f in _doc(settings)["write_files"] if "\n" in f["content"])
    assert host.bundle.count("content: |") == sum(1 for f in bundle_files(settings) if "\n" in f["content"])


SECRET_PATTERNS = [
    re.compile(r"PrivateKey\s*="),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(?:hvs|hvb|s)\.[A-Za-z0-9]{20,}"),  # Vault tokens
    re.compile(r"(?i)\b(changeme|placeholder|todo|fixme|secret_value)"),
    # A value after "password", not prose such as the backup script's "wrong password: neither ...".
    re.compile(r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9+/_-]{12,}"),
    re.compile(r"secret_id\"?\s*[:=]\s*\"[^\"]"),
]


@pytest.mark.parametrize("document", ["user_data", "bundle"])
def test_no_secret_material(settings, document):
    text = getattr(render_host(settings), document)
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
