"""The whole cloud-config, checked by Debian 12's cloud-init (22.4.2) itself; user-data's
files materialised by cloud-init's own write_files code, the bundle's by the shipped
installer, into a staging root."""

from __future__ import annotations

import grp
import json
import pwd
import re
import stat
import subprocess
from pathlib import Path

import yaml

from components.hostconfig import render_cloud_config, write_files
from tests.conftest import require_tool

from .helpers import staged, verify_units

SCHEMA = Path("/usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json")

SECRET_PATTERNS = [
    re.compile(r"PrivateKey\s*="),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(?:hvs|hvb|s)\.[A-Za-z0-9]{20,}"),  # Vault tokens
    re.compile(r"secret_id\"?\s*[:=]\s*\"[^\"]"),
    re.compile(r"\$[156y]\$[^\s:]{8,}"),  # password hashes
]


def test_cloud_init_schema_accepts_cloud_config(settings, tmp_path):
    cloud_init = require_tool("cloud-init")
    path = tmp_path / "user-data"
    path.write_text(render_cloud_config(settings))
    result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def _known_top_level_keys() -> set[str]:
    require_tool("cloud-init")
    assert SCHEMA.exists(), f"cloud-init is installed but {SCHEMA} is missing"
    schema = json.loads(SCHEMA.read_text())
    return {key for definition in schema["$defs"].values() for key in definition.get("properties", {})}


def test_cloud_config_has_no_unknown_top_level_keys(settings):
    # cloud-init 22.4 does not report unknown top-level keys: check against its JSON schema.
    doc = yaml.safe_load(render_cloud_config(settings))
    assert set(doc) - _known_top_level_keys() == set()


def test_unknown_key_check_can_fail(settings):
    doc = yaml.safe_load(render_cloud_config(settings))
    doc["ssh_pwauht"] = False  # a typo cloud-init 22.4 would silently ignore
    assert set(doc) - _known_top_level_keys() == {"ssh_pwauht"}


def _owner(owner: str) -> tuple[str, str]:
    """The staged owner: the host's admin user does not exist on the test machine (see materialise)."""
    user, group = owner.split(":")
    try:
        pwd.getpwnam(user)
    except KeyError:
        return "root", "root"
    return user, group


def test_every_file_is_written_with_its_explicit_owner_and_mode(settings, staging_root):
    files = write_files(settings)
    for entry in files:
        assert {"owner", "permissions"} <= set(entry), entry["path"]
        path = staged(staging_root, entry["path"])
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == int(entry["permissions"], 8), entry["path"]
        assert "encoding" not in entry, entry["path"]
        assert (pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name) == _owner(entry["owner"]), \
            entry["path"]
        assert path.read_text() == entry["content"], entry["path"]
    written = {str(p.relative_to(staging_root)) for p in staging_root.rglob("*") if p.is_file()}
    assert written == {f["path"].lstrip("/") for f in files}


def test_no_file_holds_secret_material(settings, staging_root):
    peer_keys = {p.public_key for p in settings.vpn.peers}
    for path in (p for p in staging_root.rglob("*") if p.is_file()):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), (path, pattern.pattern)
        for match in re.findall(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=", text):
            assert match in peer_keys, path  # only the peers' PUBLIC WireGuard keys
    boot = json.loads(staged(staging_root, "/etc/odoo-hosting/boot.json").read_text())
    assert not {"secret_id", "token", "password"} & set(boot)


def test_every_staged_systemd_unit_passes_systemd_analyze_verify(staging_root):
    units = sorted(p for p in staged(staging_root, "/etc/systemd/system").glob("*")
                   if p.suffix in (".service", ".timer", ".path", ".mount"))
    assert units
    result = verify_units(staging_root, *units)
    assert result.returncode == 0 and result.stderr == "", result.stderr
