"""DSK-01: the materialised LUKS2 setup script run for real on file images, and its unit.

cryptsetup formats a file-backed image exactly as the script does on the
Hetzner volume (only the argon2id COST is lowered, by the script's test-only
switch; type, cipher, key size, hash and KDF are the production ones). Opening
the mapping (``cryptsetup open`` without ``--test-passphrase``) needs
device-mapper, which these machines lack (no /dev/mapper/control usable, no
dm-crypt module): mapping, mkfs and mount are proved by the QEMU VM test, not here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.hostconfig import (
    DATA_VOLUME_DEVICE_GLOB,
    DATA_VOLUME_SCRIPT_PATH,
    DATA_VOLUME_UNIT_PATH,
    LUKS_CIPHER,
    LUKS_HASH,
    LUKS_KEY_BITS,
    LUKS_PBKDF,
    SECRET_FETCH_PATH,
)
from tests.conftest import require_tool

from .helpers import require_root, staged, unique_name, verify_units

TEST_KEY = "test-only-key-0123456789abcdefghijklmnopqrstuvwxyz"
SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


@pytest.fixture
def run(tmp_path, staging_root):
    """Runs the materialised script on a device/image, with a fake secret fetcher."""
    cryptsetup = require_tool("cryptsetup")
    for tool in ("blkid", "wipefs", "bash"):
        require_tool(tool)
    script = staged(staging_root, DATA_VOLUME_SCRIPT_PATH)
    fetcher = tmp_path / "fake-secret"
    fetcher.write_text(f"#!/bin/sh\n[ \"$1\" = luks-key ] || exit 3\necho '{TEST_KEY}'\n")
    fetcher.chmod(0o700)

    def _run(device: Path, *args: str, secret_cmd: Path = fetcher) -> subprocess.CompletedProcess:
        env = {"PATH": SBIN_PATH, "ODOO_HOSTING_DATA_DEVICE": str(device), "ODOO_HOSTING_SECRET_CMD": str(secret_cmd),
               "ODOO_HOSTING_TEST_FAST_PBKDF": "1"}
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60, env=env)

    _run.cryptsetup = cryptsetup
    _run.script = script
    return _run


def _image(tmp_path: Path, name: str = "volume.img") -> Path:
    image = tmp_path / name
    with open(image, "wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    return image


def _test_passphrase(cryptsetup: str, image: Path, key: str) -> subprocess.CompletedProcess:
    return subprocess.run([cryptsetup, "open", "--test-passphrase", "--key-file", "-", str(image)],
                          input=key, text=True, capture_output=True, timeout=60)


def test_dsk01_blank_volume_is_formatted_luks2_aes_xts_512_argon2id(run, tmp_path):
    image = _image(tmp_path)
    check = run(image, "--check")
    assert check.returncode == 0, check.stderr
    assert "state=blank action=format" in check.stdout
    assert image.read_bytes()[:4096] == bytes(4096)  # --check changed nothing

    formatted = run(image, "--format-only")
    assert formatted.returncode == 0, formatted.stderr
    assert TEST_KEY not in formatted.stdout + formatted.stderr
    dump = subprocess.run([run.cryptsetup, "luksDump", "--dump-json-metadata", str(image)],
                          capture_output=True, text=True, check=True)
    meta = json.loads(dump.stdout)
    assert meta["config"]  # JSON metadata exists only in LUKS2 headers
    header = subprocess.run([run.cryptsetup, "luksDump", str(image)], capture_output=True, text=True, check=True)
    assert "Version:       \t2" in header.stdout
    (segment,) = meta["segments"].values()
    (keyslot,) = meta["keyslots"].values()
    (digest,) = meta["digests"].values()
    assert segment["encryption"] == LUKS_CIPHER == "aes-xts-plain64"
    assert keyslot["key_size"] * 8 == LUKS_KEY_BITS == 512
    assert keyslot["kdf"]["type"] == LUKS_PBKDF == "argon2id"
    assert digest["hash"] == LUKS_HASH == "sha512"
    # The key piped in is the key that opens it (exactly, no trailing newline) ...
    assert _test_passphrase(run.cryptsetup, image, TEST_KEY).returncode == 0
    # ... and only that key.
    for wrong in (TEST_KEY + "\n", TEST_KEY[:-1], "wrong-key-" + TEST_KEY):
        assert _test_passphrase(run.cryptsetup, image, wrong).returncode != 0, repr(wrong)
    assert "state=luks action=open" in run(image, "--check").stdout


def test_dsk01_production_cost_parameters_are_not_the_test_ones(run):
    """Only the argon2id cost differs in tests; the production call uses cryptsetup's
    benchmarked defaults (the test switch is an environment variable production never sets)."""
    code = run.script.read_text()
    assert "--type luks2 --cipher aes-xts-plain64 --key-size 512 --hash sha512" in code
    assert "--pbkdf argon2id" in code
    assert code.count("--pbkdf-force-iterations") == 1
    assert 'if [[ "${ODOO_HOSTING_TEST_FAST_PBKDF:-}" == 1 ]]' in code


def test_dsk01_existing_luks_volume_is_never_reformatted(run, tmp_path):
    image = _image(tmp_path)
    assert run(image, "--format-only").returncode == 0
    header = image.read_bytes()[:1 << 20]
    assert run(image, "--format-only").returncode == 0
    assert image.read_bytes()[:1 << 20] == header


def test_dsk01_volume_with_other_data_is_refused(run, tmp_path):
    mkfs = require_tool("mkfs.ext4")
    image = _image(tmp_path)
    subprocess.run([mkfs, "-q", "-F", str(image)], check=True, capture_output=True)
    before = image.read_bytes()[:1 << 20]
    for mode in ("--check", "--format-only"):
        result = run(image, mode)
        assert result.returncode != 0
        assert "refusing" in result.stderr and "ext4" in result.stderr
    assert image.read_bytes()[:1 << 20] == before


def test_dsk01_failed_key_fetch_formats_nothing(run, tmp_path):
    image = _image(tmp_path)
    broken = tmp_path / "broken-secret"
    broken.write_text("#!/bin/sh\necho 'vault unreachable' >&2\nexit 1\n")
    broken.chmod(0o700)
    result = run(image, "--format-only", secret_cmd=broken)
    assert result.returncode != 0
    assert "could not fetch the LUKS key" in result.stderr
    assert image.read_bytes()[:1 << 20] == bytes(1 << 20)


def test_dsk01_missing_or_ambiguous_volume_fails_clearly(staging_root, tmp_path):
    require_tool("bash")
    script = tmp_path / "dv"
    # The same script, with the wait shortened and the glob pointing at an empty dir.
    text = staged(staging_root, DATA_VOLUME_SCRIPT_PATH).read_text()
    text = text.replace("DEVICE_WAIT_SECONDS=120", "DEVICE_WAIT_SECONDS=0")
    text = text.replace(DATA_VOLUME_DEVICE_GLOB, f"{tmp_path}/scsi-0HC_Volume_*")
    script.write_text(text)
    result = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30,
                            env={"PATH": SBIN_PATH})
    assert result.returncode != 0
    assert "expected exactly one data volume" in result.stderr and "found 0" in result.stderr
    for n in (1, 2):
        (tmp_path / f"scsi-0HC_Volume_{n}").touch()
    result = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=30,
                            env={"PATH": SBIN_PATH})
    assert result.returncode != 0 and "found 2" in result.stderr


def test_dsk01_unlock_unit_passes_systemd_analyze_verify(staging_root):
    unit = staged(staging_root, DATA_VOLUME_UNIT_PATH)
    assert staged(staging_root, SECRET_FETCH_PATH).exists()
    result = verify_units(staging_root, unit)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # The check can fail: a broken unit is reported.
    broken = unit.with_name("broken-data.service")
    broken.write_text(unit.read_text().replace("Type=oneshot", "Type=once"))
    bad = verify_units(staging_root, broken)
    assert "Failed to parse service type" in bad.stderr


def test_dsk01_opening_the_mapping_needs_device_mapper(run, tmp_path):
    """Opening the mapping is the one step these machines cannot do: without
    device-mapper, cryptsetup says so. Where device-mapper works, the mapping is
    really opened (and closed again)."""
    require_root()

    image = _image(tmp_path)
    assert run(image, "--format-only").returncode == 0
    name = unique_name("dm", limit=64)
    opened = subprocess.run([run.cryptsetup, "open", "--type", "luks2", "--key-file", "-", str(image), name],
                            input=TEST_KEY, text=True, capture_output=True, timeout=60)
    if opened.returncode == 0:
        try:
            assert Path(f"/dev/mapper/{name}").exists()
        finally:
            subprocess.run([run.cryptsetup, "close", name], check=True, timeout=60)
        return
    assert "Cannot initialize device-mapper" in opened.stderr, opened.stderr
