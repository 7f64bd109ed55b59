"""DSK-01: the LUKS2 data volume script and unit, run for real on file images."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from components.hostconfig import (
    DATA_MOUNT_POINT, DATA_VOLUME_DEVICE_GLOB, DATA_VOLUME_SCRIPT_PATH, render_data_volume_script,
    render_data_volume_unit,
)
from tests.conftest import require_tool

TEST_KEY = "test-only-key-0123456789abcdefghijklmnopqrstuvwxyz"


def _code(settings) -> list[str]:
    """The script's command lines, without comments."""
    return [line for line in render_data_volume_script(settings).splitlines() if not line.lstrip().startswith("#")]


def test_strict_bash(settings):
    text = render_data_volume_script(settings)
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text
    assert not re.search(r"@[A-Z_]+@", text)


def test_production_luks_parameters(settings):
    code = "\n".join(_code(settings))
    for option in ("--type luks2", "--cipher aes-xts-plain64", "--key-size 512", "--hash sha512",
                   "--pbkdf argon2id", "--key-file -"):
        assert option in code, option


def test_key_never_written_or_on_a_command_line(settings):
    code = "\n".join(_code(settings))
    # The key only ever goes: fetcher -> variable -> printf (builtin) -> pipe -> cryptsetup stdin.
    key_uses = [line.strip() for line in code.splitlines() if "LUKS_KEY" in line]
    for line in key_uses:
        assert (line.startswith("printf '%s' \"$LUKS_KEY\" | cryptsetup")
                or line.startswith("LUKS_KEY=") or line in ("unset LUKS_KEY",)), line
    assert "--key-file -" in code and not re.search(r"--key-file[= ](?!-)", code)
    assert not re.search(r"(?<!-)\bkey\b[^|\n]*>", code.replace(">/dev/null", "").replace("2>/dev/null", ""))
    assert "<<<" not in code  # bash here-strings may use temp files
    assert not re.search(r"luks-key[^)\n]*>", code)
    assert "mktemp" not in code and "/tmp" not in code


def test_formats_only_blank_devices(settings):
    code = "\n".join(_code(settings))
    assert "blkid -p" in code and "wipefs --no-act" in code
    assert "cryptsetup isLuks" in code
    assert "refusing" in code
    assert "wipefs -a" not in code and "--force" not in code and "dd " not in code


def test_mount_and_dirs(settings):
    code = "\n".join(_code(settings))
    assert "nodev,nosuid" in code
    assert DATA_MOUNT_POINT == "/srv/odoo-data"
    assert "readonly SUBDIRS=(postgresql filestore backup-staging)" in code
    assert "chmod 0700" in code


def test_device_is_the_single_hetzner_volume(settings):
    assert DATA_VOLUME_DEVICE_GLOB == "/dev/disk/by-id/scsi-0HC_Volume_*"
    code = "\n".join(_code(settings))
    assert f"readonly DEVICE_GLOB='{DATA_VOLUME_DEVICE_GLOB}'" in code
    assert "expected exactly one data volume" in code


def test_unit(settings):
    text = render_data_volume_unit(settings)
    lines = text.splitlines()
    for line in ("Type=oneshot", "RemainAfterExit=yes", "After=network-online.target",
                 "Wants=network-online.target", "Before=docker.service", "WantedBy=multi-user.target",
                 "RequiredBy=docker.service", f"ExecStart={DATA_VOLUME_SCRIPT_PATH}"):
        assert line in lines, line


# ---- real cryptsetup on file images -------------------------------------------------


@pytest.fixture
def run(tmp_path, settings):
    cryptsetup = require_tool("cryptsetup")
    for tool in ("blkid", "wipefs", "bash"):
        require_tool(tool)
    script = tmp_path / "odoo-hosting-data-volume"
    script.write_text(render_data_volume_script(settings))
    script.chmod(0o700)
    fetcher = tmp_path / "fake-secret"
    fetcher.write_text(f"#!/bin/sh\n[ \"$1\" = luks-key ] || exit 3\necho '{TEST_KEY}'\n")
    fetcher.chmod(0o700)
    sbin = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])

    def _run(device: Path, *args: str) -> subprocess.CompletedProcess:
        env = {"PATH": sbin, "ODOO_HOSTING_DATA_DEVICE": str(device), "ODOO_HOSTING_SECRET_CMD": str(fetcher),
               "ODOO_HOSTING_TEST_FAST_PBKDF": "1"}
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60, env=env)

    _run.cryptsetup = cryptsetup
    return _run


def _image(tmp_path: Path, name: str = "volume.img") -> Path:
    image = tmp_path / name
    with open(image, "wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    return image


def test_blank_device_is_formatted_with_production_cipher(run, tmp_path):
    image = _image(tmp_path)
    check = run(image, "--check")
    assert check.returncode == 0, check.stderr
    assert "state=blank action=format" in check.stdout
    assert image.read_bytes()[:4096] == bytes(4096)  # --check changed nothing

    formatted = run(image, "--format-only")
    assert formatted.returncode == 0, formatted.stderr
    dump = subprocess.run([run.cryptsetup, "luksDump", "--dump-json-metadata", str(image)],
                          capture_output=True, text=True, check=True)
    meta = json.loads(dump.stdout)
    (segment,) = meta["segments"].values()
    (keyslot,) = meta["keyslots"].values()
    (digest,) = meta["digests"].values()
    assert segment["encryption"] == "aes-xts-plain64"
    assert keyslot["key_size"] * 8 == 512
    assert keyslot["kdf"]["type"] == "argon2id"
    assert digest["hash"] == "sha512"
    # The key piped in is the key that opens it (exactly, no trailing newline).
    opened = subprocess.run([run.cryptsetup, "open", "--test-passphrase", "--key-file", "-", str(image)],
                            input=TEST_KEY, text=True, capture_output=True)
    assert opened.returncode == 0, opened.stderr
    assert TEST_KEY not in formatted.stdout + formatted.stderr

    again = run(image, "--check")
    assert "state=luks action=open" in again.stdout


def test_existing_luks_is_never_reformatted(run, tmp_path):
    image = _image(tmp_path)
    assert run(image, "--format-only").returncode == 0
    header = image.read_bytes()[:1 << 20]
    assert run(image, "--format-only").returncode == 0
    assert image.read_bytes()[:1 << 20] == header


def test_foreign_signature_is_refused(run, tmp_path):
    mkfs = require_tool("mkfs.ext4")
    image = _image(tmp_path)
    subprocess.run([mkfs, "-q", "-F", str(image)], check=True, capture_output=True)
    before = image.read_bytes()[:1 << 20]
    for mode in ("--check", "--format-only"):
        result = run(image, mode)
        assert result.returncode != 0
        assert "refusing" in result.stderr and "ext4" in result.stderr
    assert image.read_bytes()[:1 << 20] == before


def test_failed_key_fetch_formats_nothing(run, tmp_path):
    image = _image(tmp_path)
    broken = tmp_path / "broken-secret"
    broken.write_text("#!/bin/sh\necho 'vault unreachable' >&2\nexit 1\n")
    broken.chmod(0o700)
    env = {"PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "ODOO_HOSTING_DATA_DEVICE": str(image),
           "ODOO_HOSTING_SECRET_CMD": str(broken), "ODOO_HOSTING_TEST_FAST_PBKDF": "1"}
    script = tmp_path / "odoo-hosting-data-volume"
    result = subprocess.run(["bash", str(script), "--format-only"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "could not fetch the LUKS key" in result.stderr
    assert image.read_bytes()[:1 << 20] == bytes(1 << 20)


def test_no_device_found_fails_clearly(settings, tmp_path):
    require_tool("bash")
    script = tmp_path / "dv"
    # Same script, with the wait shortened and the glob pointing at an empty dir.
    text = render_data_volume_script(settings).replace("DEVICE_WAIT_SECONDS=120", "DEVICE_WAIT_SECONDS=0")
    text = text.replace(DATA_VOLUME_DEVICE_GLOB, f"{tmp_path}/scsi-0HC_Volume_*")
    script.write_text(text)
    result = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    assert result.returncode != 0
    assert "expected exactly one data volume" in result.stderr and "found 0" in result.stderr
    for n in (1, 2):
        (tmp_path / f"scsi-0HC_Volume_{n}").touch()
    result = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    assert result.returncode != 0 and "found 2" in result.stderr
