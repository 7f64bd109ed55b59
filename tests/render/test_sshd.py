"""ACC-01: the sshd drop-in, by content (tests/system runs sshd -t/-T and a live sshd on it)."""

from __future__ import annotations

from pathlib import Path

from components.hostconfig import SSHD_DROPIN_PATH, render_sshd_dropin

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
