"""DSK-01: the LUKS2 data volume script and unit, by content (tests/system runs them on file images)."""

from __future__ import annotations

import re

from components.hostconfig import (
    DATA_MOUNT_POINT,
    DATA_VOLUME_DEVICE_GLOB,
    DATA_VOLUME_SCRIPT_PATH,
    render_data_volume_script,
    render_data_volume_unit,
)


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
