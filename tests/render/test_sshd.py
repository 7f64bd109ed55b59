"""ACC-01: the sshd drop-in, and the EFFECTIVE configuration sshd computes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.hostconfig import SSHD_DROPIN_PATH, render_sshd_dropin
from tests.conftest import require_tool

EXPECTED = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitrootlogin": "no",
    "authenticationmethods": "publickey",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "maxauthtries": "3",
    "logingracetime": "30",
    "x11forwarding": "no",
    "allowagentforwarding": "no",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
}

# What cloud-init (or a careless image) may leave beside our drop-in.
PESSIMISTIC_CLOUD_INIT = """\
PasswordAuthentication yes
PermitRootLogin yes
KbdInteractiveAuthentication yes
MaxAuthTries 6
X11Forwarding yes
Ciphers aes128-cbc,aes256-ctr
MACs hmac-sha1
"""


def _options(text: str) -> dict[str, str]:
    pairs = [line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {k.lower(): v for k, v in pairs}


def test_dropin_sorts_before_cloud_init():
    assert Path(SSHD_DROPIN_PATH).name < "50-cloud-init.conf"
    assert Path(SSHD_DROPIN_PATH).parent == Path("/etc/ssh/sshd_config.d")


def test_dropin_values(settings):
    options = _options(render_sshd_dropin(settings))
    for key, value in EXPECTED.items():
        assert options[key] == value, key
    assert options["allowusers"] == settings.admin_user
    for key in ("hostkeyalgorithms", "pubkeyacceptedalgorithms"):
        algorithms = options[key].split(",")
        assert "ssh-rsa" not in algorithms and not any(a.startswith("ssh-rsa-cert") for a in algorithms)
        assert "ssh-ed25519" in algorithms


def test_each_keyword_once(settings):
    keywords = [line.split()[0].lower() for line in render_sshd_dropin(settings).splitlines()
                if line.strip() and not line.startswith("#")]
    assert len(keywords) == len(set(keywords))


def _run_sshd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """sshd wants /run/sshd; give it a private tmpfs /run in a user+mount namespace."""
    sshd = require_tool("sshd")
    unshare = require_tool("unshare")
    inner = f'mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {sshd} "$@"'
    return subprocess.run([unshare, "-rm", "bash", "-c", inner, "sshd", *args],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def sshd_config(tmp_path, settings) -> Path:
    keygen = require_tool("ssh-keygen")
    dropins = tmp_path / "sshd_config.d"
    dropins.mkdir()
    (dropins / Path(SSHD_DROPIN_PATH).name).write_text(render_sshd_dropin(settings))
    (dropins / "50-cloud-init.conf").write_text(PESSIMISTIC_CLOUD_INIT)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hostkey")], check=True)
    main = tmp_path / "sshd_config"
    # Debian 12's sshd_config: the Include comes first, then Debian's defaults.
    main.write_text(
        f"Include {dropins}/*.conf\n"
        f"HostKey {tmp_path / 'hostkey'}\n"
        "KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\n"
        "AcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n")
    return main


def test_sshd_accepts_config(sshd_config):
    result = _run_sshd(sshd_config.parent, "-t", "-f", str(sshd_config))
    if result.returncode != 0 and "unshare" in result.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"no user namespaces here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


def test_effective_values_win_over_cloud_init(sshd_config, settings):
    result = _run_sshd(sshd_config.parent, "-T", "-f", str(sshd_config),
                       "-C", f"user={settings.admin_user},host=operator,addr={settings.vpn.peers[0].address}")
    if result.returncode != 0 and "unshare" in result.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"no user namespaces here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    effective = _options(result.stdout)
    for key, value in EXPECTED.items():
        assert effective[key] == value, key
    assert effective["allowusers"] == settings.admin_user
    assert "ssh-rsa" not in effective["pubkeyacceptedalgorithms"].split(",")
