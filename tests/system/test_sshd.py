"""ACC-01: SSH is key-only, by sshd's own verdict and by a LIVE sshd in a namespace.

The rendered drop-in (materialised by cloud-init) sits beside a hostile
``50-cloud-init.conf`` and below a hostile main ``sshd_config`` (Debian's
layout: ``Include`` first, then the main file's own values). sshd keeps the
first value it reads, so the effective configuration must still be key-only.

The live sshd runs in a network namespace made by the test, inside a private
mount namespace that bind-mounts private copies of /etc/passwd, /etc/shadow and
/etc/group (a throwaway admin user with a KNOWN password, and root's home on a
tmpfs holding a valid key): nothing outside that mount namespace changes, the
real root password and system accounts are never touched.

The same checks run against a permissive drop-in and must flag every promise
it breaks: the checks can fail.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.hostconfig import SSHD_DROPIN_PATH, render_host
from tests.conftest import example_settings, require_tool

from .helpers import Namespaces, materialise, staged, wait_for

# ACC-01, as effective `sshd -T` values.
EXPECTED = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitrootlogin": "no",
    "authenticationmethods": "publickey",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "maxauthtries": "3",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
}

# What cloud-init (or a careless image) may leave beside our drop-in.
HOSTILE_CLOUD_INIT = """\
PasswordAuthentication yes
PermitRootLogin yes
KbdInteractiveAuthentication yes
MaxAuthTries 6
X11Forwarding yes
KexAlgorithms diffie-hellman-group14-sha1,curve25519-sha256
Ciphers aes128-cbc,aes256-ctr,aes128-gcm@openssh.com
MACs hmac-sha1,hmac-sha2-256-etm@openssh.com
"""

# A drop-in that forgets everything: the hostile values beside it then win.
PERMISSIVE_DROPIN = "# a careless drop-in: no hardening at all\nX11Forwarding yes\n"

# The client offers ONLY the weak algorithm. An AEAD cipher (chacha20-poly1305,
# *-gcm) carries its own integrity and no MAC is negotiated with it, so the
# weak-MAC attempt pairs hmac-sha1 with a non-AEAD cipher: the only way a MAC is used.
WEAK = {"cipher": ("-oCiphers=aes128-cbc",), "kex": ("-oKexAlgorithms=diffie-hellman-group14-sha1",),
        "mac": ("-oCiphers=aes256-ctr", "-oMACs=hmac-sha1")}
PASSWORD = "correct horse battery staple 42"
SERVER = "198.18.22.1"   # RFC 2544 benchmark range: private test addresses
CLIENT = "198.18.22.2"


def _main_config(directory: Path, dropins: Path, extra: str = "") -> Path:
    """Debian 12's sshd_config shape (Include first), plus hostile values after it."""
    main = directory / "sshd_config"
    main.write_text(
        f"Include {dropins}/*.conf\n"
        f"HostKey {directory / 'ssh_host_ed25519_key'}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\n"
        "AcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
        "# hostile: what a careless image might append\n"
        "PasswordAuthentication yes\nPermitRootLogin yes\nMaxAuthTries 10\n"
        "PubkeyAcceptedAlgorithms +ssh-rsa\n" + extra)
    return main


def sshd_config_dir(directory: Path, dropin_text: str, extra: str = "") -> Path:
    """A config dir: our drop-in as 00-..., the hostile 50-cloud-init.conf, a hostile main file."""
    keygen = require_tool("ssh-keygen")
    dropins = directory / "sshd_config.d"
    dropins.mkdir(parents=True)
    (dropins / Path(SSHD_DROPIN_PATH).name).write_text(dropin_text)
    (dropins / "50-cloud-init.conf").write_text(HOSTILE_CLOUD_INIT)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "ssh_host_ed25519_key")],
                   check=True)
    return _main_config(directory, dropins, extra)


def _sshd(*args: str) -> subprocess.CompletedProcess:
    """sshd wants /run/sshd: give it a private tmpfs /run in a mount namespace."""
    sshd = require_tool("sshd")
    unshare = require_tool("unshare")
    inner = f'mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {sshd} "$@"'
    if os.geteuid() != 0:
        return subprocess.run([unshare, "-rm", "bash", "-c", inner, "sshd", *args],
                              capture_output=True, text=True, timeout=30)
    return subprocess.run([unshare, "-m", "bash", "-c", inner, "sshd", *args],
                          capture_output=True, text=True, timeout=30)


def effective(main: Path, user: str, addr: str) -> dict[str, str]:
    result = _sshd("-T", "-f", str(main), "-C", f"user={user},host=operator,addr={addr}")
    assert result.returncode == 0, result.stderr
    return {k: v for k, _, v in (line.partition(" ") for line in result.stdout.splitlines())}


def effective_violations(values: dict[str, str], admin_user: str) -> list[str]:
    """ACC-01 checks on `sshd -T` output: every promise the values break."""
    broken = [f"{key}={values.get(key)!r}" for key, want in EXPECTED.items()
              if key != "maxauthtries" and values.get(key) != want]
    if int(values.get("maxauthtries", "99")) > 3:
        broken.append(f"maxauthtries={values.get('maxauthtries')}")
    if values.get("allowusers") != admin_user:
        broken.append(f"allowusers={values.get('allowusers')!r}")
    return broken


# ---- sshd -t / -T on the materialised drop-in ---------------------------------------------


@pytest.fixture
def rendered_config(tmp_path, staging_root) -> Path:
    dropin = staged(staging_root, SSHD_DROPIN_PATH).read_text()
    return sshd_config_dir(tmp_path / "ssh", dropin)


def test_acc01_sshd_t_accepts_rendered_dropin(rendered_config):
    result = _sshd("-t", "-f", str(rendered_config))
    assert result.returncode == 0, result.stderr


def test_acc01_effective_config_is_key_only_despite_hostile_cloud_init_and_main(rendered_config, settings):
    values = effective(rendered_config, settings.admin_user, str(settings.vpn.peers[0].address))
    assert effective_violations(values, settings.admin_user) == []
    assert "ssh-rsa" not in values["pubkeyacceptedalgorithms"].split(",")
    assert values["x11forwarding"] == "no"


def test_acc01_effective_checks_catch_a_permissive_dropin(tmp_path, settings):
    main = sshd_config_dir(tmp_path / "ssh", PERMISSIVE_DROPIN)
    values = effective(main, settings.admin_user, "10.0.0.1")
    broken = effective_violations(values, settings.admin_user)
    for key in ("passwordauthentication", "kbdinteractiveauthentication", "permitrootlogin",
                "authenticationmethods", "maxauthtries", "kexalgorithms", "ciphers", "macs", "allowusers"):
        assert any(b.startswith(key + "=") for b in broken), (key, broken)


# ---- a live sshd in a network namespace ------------------------------------------------------

_SERVE = r"""
set -e
d=$1 uid=$2 user=$3
mount --bind "$d/passwd" /etc/passwd
mount --bind "$d/shadow" /etc/shadow
mount --bind "$d/group" /etc/group
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
mount -t tmpfs -o mode=0755 tmpfs /home
install -d -m 0700 -o "$uid" -g "$uid" "/home/$user" "/home/$user/.ssh"
install -m 0600 -o "$uid" -g "$uid" "$d/authorized_keys" "/home/$user/.ssh/authorized_keys"
mount -t tmpfs -o mode=0700 tmpfs /root
install -d -m 0700 /root/.ssh
install -m 0600 "$d/authorized_keys" /root/.ssh/authorized_keys
exec /usr/sbin/sshd -D -e -f "$d/sshd_config"
"""


def _free_uid() -> int:
    """An id used by no user and no group here (the user's private group gets the same id)."""
    used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return next(uid for uid in range(61000, 65000) if uid not in used)


def _accounts(directory: Path, user: str, uid: int) -> None:
    """Private copies of passwd/shadow/group with the admin user (known password)."""
    openssl = require_tool("openssl")
    hashed = subprocess.run([openssl, "passwd", "-6", "-stdin"], input=PASSWORD, capture_output=True,
                            text=True, check=True).stdout.strip()
    passwd = [line for line in Path("/etc/passwd").read_text().splitlines() if not line.startswith(f"{user}:")]
    # No real password hash is copied: every other account is locked ("*") in the copy.
    shadow = [":".join([f[0], "*", *f[2:]]) for f in (line.split(":") for line in
              Path("/etc/shadow").read_text().splitlines()) if f[0] != user and len(f) > 2]
    group = [line for line in Path("/etc/group").read_text().splitlines() if not line.startswith(f"{user}:")]
    (directory / "passwd").write_text("\n".join(passwd + [f"{user}:x:{uid}:{uid}::/home/{user}:/bin/sh"]) + "\n")
    (directory / "shadow").write_text("\n".join(shadow + [f"{user}:{hashed}:19000:0:99999:7:::"]) + "\n")
    (directory / "group").write_text("\n".join(group + [f"{user}:x:{uid}:"]) + "\n")
    for name, mode in (("passwd", 0o644), ("shadow", 0o640), ("group", 0o644)):
        (directory / name).chmod(mode)


@dataclass
class LiveSshd:
    namespaces: Namespaces
    client_ns: str
    keys: Path
    user: str

    def ssh(self, user: str, *options: str, identities: tuple[str, ...] = ("good",),
            password: bool = False) -> subprocess.CompletedProcess:
        ssh = require_tool("ssh")
        argv = [ssh, "-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
                "-o", "LogLevel=INFO"]
        env = {"PATH": "/usr/bin:/bin"}
        if password:
            askpass = self.keys / "askpass"
            argv += ["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                     "-o", "PreferredAuthentications=password,keyboard-interactive"]
            env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        else:
            argv += ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey"]
            for name in identities:
                argv += ["-i", str(self.keys / name)]
        argv += [*options, f"{user}@{SERVER}", "id", "-un"]
        return self.namespaces.run(self.client_ns, *argv, check=False, timeout=20, env=env,
                                   stdin=subprocess.DEVNULL)

    def logged_in(self, result: subprocess.CompletedProcess, user: str) -> bool:
        return result.returncode == 0 and result.stdout.strip() == user


def acc01_live_outcomes(server: LiveSshd) -> dict[str, bool]:
    """What the live server allowed (True = the attempt got a shell)."""
    user = server.user
    outcomes = {
        "key_login": server.logged_in(server.ssh(user), user),
        "password_login": server.logged_in(server.ssh(user, password=True), user),
        "root_key_login": server.logged_in(server.ssh("root"), "root"),
        "unknown_key_login": server.logged_in(server.ssh(user, identities=("unknown1",)), user),
        # The valid key offered after MaxAuthTries (3) failures: the connection is cut first.
        "key_after_3_failures": server.logged_in(
            server.ssh(user, identities=("unknown1", "unknown2", "unknown3", "good")), user),
    }
    for name, options in WEAK.items():
        outcomes[f"weak_{name}"] = server.logged_in(server.ssh(user, *options), user)
    return outcomes


def _start_live_sshd(directory: Path, dropin_text: str, user: str) -> tuple[Namespaces, LiveSshd]:
    require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    namespaces = Namespaces()
    try:
        keys = directory / "client"
        keys.mkdir(parents=True)
        for name in ("good", "unknown1", "unknown2", "unknown3"):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)],
                           check=True)
        (keys / "askpass").write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
        (keys / "askpass").chmod(0o700)
        server_dir = directory / "server"
        server_dir.mkdir()
        main = sshd_config_dir(server_dir, dropin_text, extra=f"ListenAddress {SERVER}:22\n")
        (server_dir / "authorized_keys").write_text((keys / "good.pub").read_text())
        uid = _free_uid()
        _accounts(server_dir, user, uid)
        assert main.exists()
        host = namespaces.add("sshd")
        client = namespaces.add("ssh")
        namespaces.veth(host, "eth0", [f"{SERVER}/24"], client, "eth0", [f"{CLIENT}/24"])
        process = namespaces.spawn(host, require_tool("unshare"), "-m", "--propagation", "private",
                                   "bash", "-c", _SERVE, "serve", str(server_dir), str(uid), user,
                                   output=directory / "sshd.log")

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError("sshd exited: " + namespaces.output(process))
            return "Server listening" in namespaces.output(process)
        wait_for(listening, timeout=10, interval=0.02, what="the live sshd")
        return namespaces, LiveSshd(namespaces, client, keys, user)
    except BaseException:
        namespaces.close()
        raise


@pytest.fixture(scope="module", params=["example-public", "example-private"])
def live(request, tmp_path_factory):
    settings = example_settings(request.param)
    directory = tmp_path_factory.mktemp(f"live-sshd-{request.param}")
    dropin = staged(materialise(render_host(settings), directory / "root"), SSHD_DROPIN_PATH).read_text()
    namespaces, server = _start_live_sshd(directory / "run", dropin, settings.admin_user)
    try:
        yield server
    finally:
        namespaces.close()


def test_acc01_live_key_login_works(live):
    result = live.ssh(live.user)
    assert live.logged_in(result, live.user), result.stderr


def test_acc01_live_password_login_refused_with_right_password(live):
    result = live.ssh(live.user, password=True)
    assert not live.logged_in(result, live.user)
    assert "Permission denied (publickey)" in result.stderr, result.stderr


def test_acc01_live_root_login_refused_with_valid_key(live):
    result = live.ssh("root")
    assert not live.logged_in(result, "root")
    assert "Permission denied" in result.stderr, result.stderr


def test_acc01_live_unknown_key_refused(live):
    result = live.ssh(live.user, identities=("unknown1",))
    assert not live.logged_in(result, live.user)
    assert "Permission denied" in result.stderr, result.stderr


@pytest.mark.parametrize("weak", sorted(WEAK))
def test_acc01_live_weak_algorithm_refused(live, weak):
    result = live.ssh(live.user, *WEAK[weak])
    assert not live.logged_in(result, live.user)
    assert "no matching" in result.stderr, result.stderr


def test_acc01_live_server_proposes_only_modern_algorithms(live):
    """What the server offers in its KEXINIT (seen by the client with -vv)."""
    result = live.ssh(live.user, "-vv")
    assert live.logged_in(result, live.user), result.stderr
    proposal = result.stderr.split("peer server KEXINIT proposal", 1)[1]
    offered = {}
    for line in proposal.splitlines():
        if line.startswith("debug2: ") and ": " in line[8:]:
            key, _, value = line[8:].partition(": ")
            offered.setdefault(key, value)
    assert offered["KEX algorithms"].split(",")[:3] == EXPECTED["kexalgorithms"].split(",")
    assert set(offered["KEX algorithms"].split(",")) - set(EXPECTED["kexalgorithms"].split(",")) <= {
        "ext-info-s", "kex-strict-s-v00@openssh.com"}  # protocol markers, not algorithms
    assert offered["ciphers ctos"] == offered["ciphers stoc"] == EXPECTED["ciphers"]
    assert offered["MACs ctos"] == offered["MACs stoc"] == EXPECTED["macs"]


def test_acc01_live_connection_cut_after_max_auth_tries(live):
    two_wrong = live.ssh(live.user, identities=("unknown1", "unknown2", "good"))
    assert live.logged_in(two_wrong, live.user), two_wrong.stderr
    three_wrong = live.ssh(live.user, identities=("unknown1", "unknown2", "unknown3", "good"))
    assert not live.logged_in(three_wrong, live.user)
    assert "Too many authentication failures" in three_wrong.stderr, three_wrong.stderr


def test_acc01_live_checks_catch_a_permissive_dropin(tmp_path, public_settings):
    """The same live checks against a permissive drop-in: every broken promise is seen."""
    namespaces, server = _start_live_sshd(tmp_path, PERMISSIVE_DROPIN, public_settings.admin_user)
    try:
        outcomes = acc01_live_outcomes(server)
    finally:
        namespaces.close()
    assert outcomes == {
        "key_login": True,
        "password_login": True, "root_key_login": True, "key_after_3_failures": True,
        "weak_cipher": True, "weak_kex": True, "weak_mac": True,
        "unknown_key_login": False,
    }


def test_acc01_live_outcomes_of_rendered_dropin(live):
    """The checks the permissive test relies on, summarised on the rendered drop-in."""
    assert acc01_live_outcomes(live) == {
        "key_login": True,
        "password_login": False, "root_key_login": False, "key_after_3_failures": False,
        "weak_cipher": False, "weak_kex": False, "weak_mac": False,
        "unknown_key_login": False,
    }
