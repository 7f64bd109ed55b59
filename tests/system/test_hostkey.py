"""The host-key installer and a live sshd: the host offers exactly the Pulumi-made key (ACC-01).

``odoo-hosting-hostkey`` (rendered) runs against a scratch ssh directory that
holds the keys cloud-init generates (RSA, ECDSA, Ed25519), with a stand-in
fetcher printing the key pulumi-tls would make. Then a real sshd on loopback
serves the installed key: ``ssh-keyscan`` sees only it, ssh with the
``known_hosts`` line the stack exports gets past host-key checking, ssh with a
mismatching line is refused. The VM test (tests/vm) proves the same on a
booted host with the real Vault flow.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from components.hostconfig.hostkey import render_hostkey_script
from components.hostkeys import known_hosts_line, strict_ssh_options
from tests.conftest import ed25519_outputs, require_tool


def _keygen(path: Path, kind: str) -> None:
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)


@pytest.fixture
def scratch(tmp_path):
    ssh_dir = tmp_path / "ssh"
    ssh_dir.mkdir()
    for kind in ("rsa", "ecdsa", "ed25519"):
        _keygen(ssh_dir / f"ssh_host_{kind}_key", kind)
    made = ed25519_outputs(os.urandom(32))
    (tmp_path / "vault-value").write_text(made["privateKeyOpenssh"].strip() + "\n")
    fetch = tmp_path / "fetch"
    fetch.write_text(f'#!/bin/sh\n[ "$1" = ssh-host-ed25519-key ] || exit 3\ncat {tmp_path / "vault-value"}\n')
    fetch.chmod(0o755)
    script = tmp_path / "odoo-hosting-hostkey"
    script.write_text(render_hostkey_script(ssh_dir=str(ssh_dir), fetch=str(fetch),
                                            restart=f"echo restart >> {tmp_path / 'restarts'}"))
    script.chmod(0o755)
    return tmp_path, ssh_dir, script, made["publicKeyOpenssh"].strip()


def _run(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30)


def test_installs_only_the_vault_key_and_restarts_sshd_once(scratch):
    tmp, ssh_dir, script, public = scratch
    result = _run(script)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in ssh_dir.iterdir()) == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    key = ssh_dir / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == (tmp / "vault-value").read_text()
    assert (ssh_dir / "ssh_host_ed25519_key.pub").read_text().split() == public.split()
    assert (tmp / "restarts").read_text() == "restart\n"
    # Every boot: nothing changed, no restart.
    assert _run(script).returncode == 0
    assert (tmp / "restarts").read_text() == "restart\n"


def test_an_invalid_key_from_vault_leaves_the_installed_one(scratch):
    tmp, ssh_dir, script, _public = scratch
    assert _run(script).returncode == 0
    before = (ssh_dir / "ssh_host_ed25519_key").read_text()
    (tmp / "vault-value").write_text("not a key\n")
    result = _run(script)
    assert result.returncode != 0 and "not valid" in result.stderr
    assert (ssh_dir / "ssh_host_ed25519_key").read_text() == before
    assert not [p for p in ssh_dir.iterdir() if p.name.startswith(".odoo-hosting-hostkey")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_sshd_offers_exactly_the_stack_key_and_a_mismatch_is_refused(scratch):
    tmp, ssh_dir, script, public = scratch
    sshd, ssh, keyscan = require_tool("sshd"), require_tool("ssh"), require_tool("ssh-keyscan")
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("root is required under CI=true")
        pytest.skip("sshd needs root for its privilege separation")
    assert _run(script).returncode == 0
    port = _free_port()
    config = tmp / "sshd_config"
    # All three generated keys named, as sshd's defaults would: only the one left on disk is served.
    config.write_text(f"ListenAddress 127.0.0.1:{port}\nHostKey {ssh_dir}/ssh_host_ed25519_key\n"
                      f"HostKey {ssh_dir}/ssh_host_rsa_key\nHostKey {ssh_dir}/ssh_host_ecdsa_key\n"
                      f"PidFile {tmp}/sshd.pid\nAuthenticationMethods publickey\nPasswordAuthentication no\n")
    inner = f'mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {sshd} -D -e -f {config}'
    with open(tmp / "sshd.log", "w") as log:
        server = subprocess.Popen(["unshare", "-m", "sh", "-c", inner], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp / "sshd.log").read_text()
                time.sleep(0.1)
        scan = subprocess.run([keyscan, "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=30)
        offered = [" ".join(line.split()[1:3]) for line in scan.stdout.splitlines() if not line.startswith("#")]
        assert offered == [public]  # the RSA/ECDSA lines of the config name files that were removed

        def attempt(line: str) -> subprocess.CompletedProcess:
            known = tmp / "known_hosts"
            known.write_text(line + "\n")
            return subprocess.run([ssh, *strict_ssh_options(str(known)), "-p", str(port), "-o", "IdentityFile=none",
                                   "-o", "IdentitiesOnly=yes", "nobody@127.0.0.1", "true"],
                                  capture_output=True, text=True, timeout=30)

        good = attempt(known_hosts_line("127.0.0.1", public, port=port))
        # Past host-key checking: only authentication fails (no client key).
        assert "Permission denied" in good.stderr and "Host key verification failed" not in good.stderr, good.stderr
        other = ed25519_outputs(os.urandom(32))["publicKeyOpenssh"]
        bad = attempt(known_hosts_line("127.0.0.1", other, port=port))
        assert bad.returncode == 255 and "Host key verification failed" in bad.stderr, bad.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
