"""Boot one rendered host in QEMU and check its promises from the outside.

:func:`boot_and_check` returns a :class:`Report` (one :class:`Check` per
promise) instead of asserting, so a weakened cloud-config can show that the
same checks do report the failure.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml

from components.hostconfig import (
    DATA_MOUNT_POINT, DATA_VOLUME_MAPPER_NAME, DATA_VOLUME_UNIT_NAME, MAX_RETRY,
    NFTABLES_TABLE, SECRET_NAME_LUKS_KEY, SECRET_NAME_WIREGUARD_KEY, VAULT_KV_MOUNT, WRAPPED_SECRET_ID_PATH,
    approle_role_id, boot_kv_path, render_cloud_config,
)
from components.hostconfig.nftables import PUBLIC_TCP_PORTS
from tests.conftest import example_raw_config, example_settings

from .image import ensure_image
from .machine import (
    DATA_VOLUME_BY_ID, FORWARD_BASE, GUEST_HOST_ALIAS, PROBED_TCP_PORTS, SSH, VAULT_PORT, Guest, NetNS, WgPeer,
    run,
)
from .vault_standin import VaultStandIn, make_test_ca, socket_in_netns

BOOT_TIMEOUT = 420
"""Seconds from QEMU start to SSH through the tunnel (TCG is slow; about 60 s measured)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    label: str
    checks: dict[str, Check] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Optional[str] = None
    console_tail: str = ""

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks[name] = Check(name, bool(ok), detail)

    def failed(self) -> list[Check]:
        return [c for c in self.checks.values() if not c.ok]

    def summary(self) -> str:
        lines = [f"[{self.label}] " + ", ".join(f"{p} {t:.0f}s" for p, t in self.timings)]
        lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks.values()]
        if self.error:
            lines.append(f"  ERROR {self.error}\n  console:\n{self.console_tail}")
        return "\n".join(lines)


def test_settings(stack: str, *, ssh_public_key: str, peers: list[WgPeer]):
    """The example stack with the test's own public keys and the stand-in's address (public values only)."""
    raw = example_raw_config(stack)
    vpn = dict(raw["vpn"])
    vpn["peers"] = [{"name": p.name, "publicKey": p.public_key, "address": p.address} for p in peers]
    return example_settings(stack, sshKeys=[{"name": "vm-test", "publicKey": ssh_public_key}], vpn=vpn,
                            vaultAddress=f"https://{GUEST_HOST_ALIAS}:{VAULT_PORT}")


def with_test_ca(user_data: str, ca_pem: str, ca_hash: str) -> str:
    """The rendered cloud-config plus ONE test-only file: the Vault stand-in's throwaway CA
    (a CA certificate is public), where OpenSSL looks certificates up by subject hash.

    Not cloud-init's ``ca_certs`` module: it runs dpkg-reconfigure and
    update-ca-certificates, about 50 s under emulation, for the same effect."""
    data = yaml.safe_load(user_data)
    data["write_files"].append({"path": f"/etc/ssl/certs/{ca_hash}.0", "permissions": "0644",
                                "content": ca_pem})
    return "#cloud-config\n" + yaml.safe_dump(data, sort_keys=False, width=4096)


def weaken_sshd(user_data: str) -> str:
    """A WEAKENED cloud-config for the negative test: password SSH on, and a drop-in read
    before ours that allows passwords and root."""
    data = yaml.safe_load(user_data)
    data["ssh_pwauth"] = True
    data["write_files"].append({
        "path": "/etc/ssh/sshd_config.d/00-aaa-weakened.conf", "permissions": "0644",
        "content": "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n"
                   "AuthenticationMethods any\nPermitRootLogin yes\n"})
    return "#cloud-config\n" + yaml.safe_dump(data, sort_keys=False, width=4096)


def boot_and_check(stack: str, *, label: Optional[str] = None,
                   transform: Callable[[str], str] = lambda text: text, ssh_only: bool = False,
                   log=print) -> Report:
    """Boot ``stack``'s rendered cloud-config (after ``transform``) and check it from outside.

    ``ssh_only`` runs the SSH checks and then kills the VM (the weakened case needs no more)."""
    report = Report(label or stack)
    started = time.monotonic()
    mark = lambda phase: report.timings.append((phase, time.monotonic() - started))  # noqa: E731
    image = ensure_image(log=log)
    mark("image built" if image.built else "image ready (cached)")
    workdir = Path(tempfile.mkdtemp(prefix="odoo-hosting-vm-"))
    ns = standin = guest = None
    peers: list[WgPeer] = []
    try:
        ns = NetNS()
        ca, cert, key = make_test_ca(workdir, GUEST_HOST_ALIAS)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm-test", "-f", str(workdir / "id_ed25519"))
        ssh_public = (workdir / "id_ed25519.pub").read_text().strip()
        subnet = ipaddress.ip_network(example_raw_config(stack)["vpn"]["subnet"])
        peers = [WgPeer.generate("vm-test-operator", str(subnet.network_address + 10), 110),
                 WgPeer.generate("vm-test-member", str(subnet.network_address + 11), 111)]
        settings = test_settings(stack, ssh_public_key=ssh_public, peers=peers)
        host_wg_private = run("wg", "genkey").stdout.strip()
        host_wg_public = run("wg", "pubkey", input=host_wg_private + "\n").stdout.strip()
        standin = VaultStandIn(
            netns=ns.name, port=VAULT_PORT, cert=cert, key=key, role_id=approle_role_id(settings.client_id),
            kv_mount=VAULT_KV_MOUNT, kv_path=boot_kv_path(settings.client_id),
            values={**{name: secrets.token_urlsafe(32) for name in other_secret_names()},
                    SECRET_NAME_LUKS_KEY: secrets.token_urlsafe(48), SECRET_NAME_WIREGUARD_KEY: host_wg_private})
        ca_hash = run("openssl", "x509", "-hash", "-noout", "-in", str(ca)).stdout.strip()
        user_data = transform(with_test_ca(render_cloud_config(settings), ca.read_text(), ca_hash))
        guest = Guest(ns=ns, image=image, workdir=workdir, user_data=user_data,
                      wrapped_secret_id=standin.wrapping_token, instance_id=f"iid-{uuid_hex()}",
                      hostname=settings.client_id)
        guest.start()
        host = str(settings.vpn.host_address)
        for peer in peers:
            peer.start(ns, workdir, host, host_wg_public)
        operator, member = peers
        ssh = SSH(ns, workdir, workdir / "id_ed25519", host)
        admin = settings.admin_user
        master = ("-o", "ControlMaster=auto", "-o", f"ControlPath={workdir}/cm-%r", "-o", "ControlPersist=300")
        sh = lambda command, timeout=60: ssh.run(operator.address, admin, command, *master, "-o", "BatchMode=yes",  # noqa: E731
                                                timeout=timeout)

        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            if not guest.alive():
                raise RuntimeError("QEMU exited during boot")
            if sh("true", timeout=20).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no SSH through WireGuard within {BOOT_TIMEOUT}s")
            time.sleep(2)
        mark("SSH up (through WireGuard)")
        result = sh("until test -e /var/lib/cloud/instance/boot-finished; do sleep 1; done; "
                    "timeout 180 systemctl is-system-running --wait", timeout=240)
        mark("cloud-init done")
        report.notes.append(f"is-system-running after boot: {result.stdout.strip()}")

        context = dict(sh=sh, ssh=ssh, ns=ns, operator=operator, member=member, settings=settings,
                       standin=standin, workdir=workdir)
        _ssh_checks(report, **context)
        if ssh_only:
            mark("SSH checks done")
            guest.stop(timeout=30)
            mark("VM stopped")
            return report
        _checks(report, **context)
        mark("checks done")
        clean = guest.stop()
        mark("VM stopped" + ("" if clean else " (killed)"))
        _check_disks(report, guest, standin, workdir)
    except Exception as error:  # noqa: BLE001 - reported; the test fails on it
        report.error = f"{type(error).__name__}: {error}"
        if guest:
            report.console_tail = guest.console_tail()
    finally:
        if guest:
            guest.kill()
        for peer in peers:
            peer.stop()
        if standin:
            standin.close()
        if ns:
            ns.close()
        shutil.rmtree(workdir, ignore_errors=True)
        report.timings.append(("total", time.monotonic() - started))
    return report


def other_secret_names() -> set[str]:
    """Names of the client's other secrets the host may fetch (app, backup), found by
    introspection so this test follows the components that define them."""
    import importlib
    names: set[str] = set()
    for module_name in ("components.secrets", "components.hostconfig", "components.hostconfig.docker",
                        "components.hostconfig.backup"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        names |= {v for k, v in vars(module).items() if k.startswith("SECRET_NAME_") and isinstance(v, str)}
        names |= {k for k in getattr(module, "HOST_FILES", {}) if isinstance(k, str)}
    return names


def data_marker(standin: VaultStandIn) -> str:
    return f"odoo-hosting-vm-test-marker-{standin.client_token[-16:]}"


def uuid_hex() -> str:
    return secrets.token_hex(6)


def probe_tcp(ns: NetNS, address: str, port: int, source: Optional[str] = None, wait: float = 4.0) -> str:
    """'data' (a banner), 'closed' (EOF or refused: something answered) or 'silent' (dropped) within ``wait``."""
    sock = socket_in_netns(ns.name)
    sock.settimeout(wait)
    try:
        if source:
            sock.bind((source, 0))
        sock.connect((address, port))
        return "data" if sock.recv(64) else "closed"
    except ConnectionError:
        return "closed"
    except (socket.timeout, TimeoutError):
        return "silent"
    finally:
        sock.close()


def _ssh_checks(report: Report, *, sh, ssh: SSH, operator: WgPeer, settings, workdir: Path, **_) -> None:
    admin = settings.admin_user
    host = str(settings.vpn.host_address)

    # ACC-01: key login works.
    result = sh("id -un")
    report.add("ssh-key-login", result.returncode == 0 and result.stdout.strip() == admin,
               f"{admin} with the test key through WireGuard: rc={result.returncode} {result.stdout.strip()!r}")

    # ACC-01: the effective sshd configuration.
    result = sh(f"sudo sshd -T -C user={admin},host=probe,addr={operator.address},laddr={host},lport=22")
    effective = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    wanted = {"passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no",
              "authenticationmethods": "publickey"}
    wrong = {k: effective.get(k) for k, v in wanted.items() if effective.get(k) != v}
    if int(effective.get("maxauthtries", "99")) > 3:
        wrong["maxauthtries"] = effective.get("maxauthtries")
    report.add("sshd-effective-config", result.returncode == 0 and not wrong,
               f"sshd -T: {'as required' if not wrong else wrong}")

    # ACC-01: password login refused, for an account that HAS a password.
    password = secrets.token_urlsafe(16)
    set_pw = sh(f"echo '{admin}:{password}' | sudo chpasswd && sudo passwd -S {admin}")
    has_password = set_pw.returncode == 0 and set_pw.stdout.split()[1:2] == ["P"]
    askpass = workdir / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{password}'\n")
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    result = ssh.run(operator.address, admin, "id -un", "-o", "PubkeyAuthentication=no", "-o", "BatchMode=no",
                     "-o", "PreferredAuthentications=password,keyboard-interactive",
                     "-o", "NumberOfPasswordPrompts=1", env=env, timeout=40)
    report.add("ssh-password-refused",
               has_password and result.returncode == 255 and "Permission denied" in result.stderr,
               f"{admin} has a password: {has_password}; password login rc={result.returncode} "
               f"{(result.stdout + result.stderr).strip()[-120:]!r}")

    # ACC-01: root refused (cloud-init put the key in root's authorized_keys, behind a command=).
    result = ssh.run(operator.address, "root", "id -un", "-o", "BatchMode=yes", timeout=40)
    report.add("ssh-root-refused", result.returncode == 255 and "Permission denied" in result.stderr,
               f"root with the admin key: rc={result.returncode} {(result.stdout + result.stderr).strip()[-100:]!r}")



def _checks(report: Report, *, sh, ssh: SSH, ns: NetNS, operator: WgPeer, member: WgPeer, settings,
            standin: VaultStandIn, workdir: Path) -> None:
    admin = settings.admin_user
    host = str(settings.vpn.host_address)

    # DSK-01: LUKS2 mapping opened at boot, mounted where the data lives. The marker goes in
    # base64 so its plaintext is never on a command line (sudo logs those to the journal).
    marker_b64 = base64.b64encode(data_marker(standin).encode()).decode()
    result = sh(f"""sudo sh -c '
        dev=$(readlink -f {DATA_VOLUME_BY_ID}); echo "device=$dev"
        echo "unit=$(systemctl is-active {DATA_VOLUME_UNIT_NAME})"
        findmnt -n -o SOURCE,FSTYPE {DATA_MOUNT_POINT} | sed "s/^/mount=/"
        for d in postgresql filestore; do echo "sub-$d=$(findmnt -n -o SOURCE -T {DATA_MOUNT_POINT}/$d)"; done
        cryptsetup status {DATA_VOLUME_MAPPER_NAME} | sed "s/^ *//; s/: */=/; s/^/status-/"
        echo "json=$(cryptsetup luksDump --dump-json-metadata "$dev" | tr -d "\\n")"
        echo {marker_b64} | base64 -d > {DATA_MOUNT_POINT}/filestore/vm-test-marker; sync'""")
    facts = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    mapper = f"/dev/mapper/{DATA_VOLUME_MAPPER_NAME}"
    try:
        meta = json.loads(facts.get("json", "{}"))
        kdfs = sorted({slot["kdf"]["type"] for slot in meta.get("keyslots", {}).values()})
        segment = next(iter(meta.get("segments", {}).values()), {})
    except (ValueError, KeyError):
        kdfs, segment = [], {}
    ok = (facts.get("unit") == "active" and facts.get("mount", "").split() == [mapper, "ext4"]
          and facts.get("sub-postgresql") == mapper and facts.get("sub-filestore") == mapper
          and facts.get("status-type") == "LUKS2" and facts.get("status-cipher") == "aes-xts-plain64"
          and facts.get("status-keysize") == "512 bits" and facts.get("status-device") == facts.get("device")
          and kdfs == ["argon2id"] and segment.get("encryption") == "aes-xts-plain64")
    report.add("data-volume-luks2", ok,
               f"{DATA_VOLUME_BY_ID} -> {facts.get('device')}: unit {facts.get('unit')}, mount {facts.get('mount')}, "
               f"{facts.get('status-type')} {facts.get('status-cipher')} {facts.get('status-keysize')}, kdf {kdfs}")

    # SEC-01/SEC-02: the secrets came from Vault through the wrapped secret-id, used once.
    result = sh(f"sudo sh -c 'test -e {WRAPPED_SECRET_ID_PATH} && echo present || echo gone'")
    paths = [(m, p.split("?")[0], c) for m, p, c in standin.calls]
    unwraps = [c for m, p, c in paths if p == "/v1/sys/wrapping/unwrap"]
    logins = [c for m, p, c in paths if p == "/v1/auth/approle/login"]  # (bootstrap ones end in #bootstrap)
    reads = [c for m, p, c in paths if p.startswith(f"/v1/{VAULT_KV_MOUNT}/data/")]
    report.add("boot-secrets-from-vault",
               unwraps == [200] and logins == [200] and reads.count(200) >= 2 and result.stdout.strip() == "gone",
               f"stand-in saw unwrap {unwraps}, login {logins}, KV reads {reads}; wrapped secret-id "
               f"{result.stdout.strip()}")

    # ACC-02/TLS-02: nftables active, input policy drop, only the controls' ports answer.
    result = sh(f"systemctl is-active nftables; sudo nft -j list chain inet {NFTABLES_TABLE} input")
    lines = result.stdout.split("\n", 1)
    try:
        chain = next(i["chain"] for i in json.loads(lines[1])["nftables"] if "chain" in i)
    except (ValueError, StopIteration, IndexError):
        chain = {}
    expected = set(PUBLIC_TCP_PORTS) if settings.public else set()
    outcomes: dict[int, str] = {}
    threads = [threading.Thread(target=lambda p=p: outcomes.__setitem__(p, probe_tcp(ns, "127.0.0.1", FORWARD_BASE + p)))
               for p in PROBED_TCP_PORTS]
    vpn_db = {}
    threads.append(threading.Thread(target=lambda: vpn_db.__setitem__(
        5432, probe_tcp(ns, host, 5432, source=operator.address))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answering = {p for p, o in outcomes.items() if o != "silent"}
    report.add("nftables-policy-drop",
               lines[0].strip() == "active" and chain.get("policy") == "drop" and chain.get("hook") == "input"
               and answering == expected and vpn_db.get(5432) == "silent",
               f"nftables {lines[0].strip()}, input hook {chain.get('hook')} policy {chain.get('policy')}; from "
               f"outside tcp {sorted(PROBED_TCP_PORTS)} -> answering {sorted(answering)} (expected "
               f"{sorted(expected)}); WireGuard udp answers (the tunnel works); 5432 from the VPN {vpn_db.get(5432)}")

    # SWU-01: unattended-upgrades on its timers, at the maintenance window.
    result = sh("systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer | tr '\\n' ' '; echo; "
                "systemctl show -p TimersCalendar --value apt-daily-upgrade.timer; "
                "apt-config dump APT::Periodic | tr '\\n' ' '; echo; "
                "systemctl list-timers --all --no-legend | awk '{print $(NF-1)}' | tr '\\n' ' '")
    out = result.stdout.splitlines() + ["", "", "", ""]
    window = f"{settings.maintenance_window.start}:00"
    report.add("unattended-upgrades-enabled",
               out[0].split() == ["enabled", "enabled"] and window in out[1]
               and 'APT::Periodic::Unattended-Upgrade "1"' in out[2] and "apt-daily-upgrade.timer" in out[3],
               f"timers {out[0].strip()}; calendar {out[1].strip()!r}; periodic {out[2].strip()!r}")
    backup_timers = [t for t in out[3].split() if "backup" in t and t != "dpkg-db-backup.timer"]
    report.add("backup-timer-enabled", bool(backup_timers),
               f"backup timers: {backup_timers or 'none (the backup issue adds it)'}; all timers: {out[3].strip()}")

    # cloud-init finished with no error or warning; no failed unit.
    result = sh("cloud-init status --long; echo ---; sudo cat /run/cloud-init/result.json; echo ---; "
                "sudo grep -E ' (WARNING|ERROR|CRITICAL)' /var/log/cloud-init.log | tail -n 5")
    status, result_json, warnings = (result.stdout.split("\n---\n") + ["", ""])[:3]
    try:
        errors = json.loads(result_json)["v1"]["errors"]
    except (ValueError, KeyError):
        errors = ["result.json unreadable"]
    report.add("cloud-init-done-clean",
               "status: done" in status and not errors and not warnings.strip(),
               f"{' '.join(status.split()[:2])}; errors {errors}; warnings {warnings.strip()[-300:]!r}")
    result = sh("systemctl is-system-running; for u in $(systemctl --failed --no-legend --plain | awk '{print $1}'); "
                "do echo \"$u: $(sudo journalctl -b -u $u -n 4 -o cat | tr '\\n' ' ')\"; done")
    state = result.stdout.strip().splitlines()
    report.add("system-running", state[:1] == ["running"], f"is-system-running: {' | '.join(state) or result.stderr}")
    timing = sh("systemd-analyze time | head -1; systemd-analyze blame --no-pager | head -n 6 | tr -s ' '; "
                "sudo cloud-init analyze blame 2>/dev/null | sed -n '2,7p' | tr -s ' '")
    report.notes.append("boot: " + " | ".join(timing.stdout.strip().splitlines()))

    # ACC-04: fail2ban is active, configured, and bans a source after failures.
    result = sh("systemctl is-active fail2ban; sudo fail2ban-client status | sed -n 's/.*Jail list:\\s*//p'; "
                "for k in maxretry findtime bantime; do sudo fail2ban-client get sshd $k; done")
    out = result.stdout.split()
    active = out[:1] == ["active"]
    jails = result.stdout.splitlines()[1] if len(result.stdout.splitlines()) > 1 else ""
    try:
        maxretry, findtime, bantime = (int(x) for x in out[-3:])
    except ValueError:
        maxretry = findtime = bantime = -1
    def banned_now() -> bool:  # nft answers in milliseconds; fail2ban-client takes seconds under emulation
        out = sh("sudo nft -j list set inet f2b-table addr-set-sshd 2>/dev/null || true").stdout
        return f'"{member.address}"' in out

    def failed_login() -> None:  # an unknown user, with a key: one failure in the journal
        ssh.run(member.address, "mallory", "true", "-o", "BatchMode=yes", timeout=20)

    for _ in range(MAX_RETRY - 1):
        failed_login()
    time.sleep(3)  # fail2ban follows the journal with a short delay
    early = banned_now()
    attempts = MAX_RETRY - 1
    if not early:
        failed_login()
        attempts += 1
    banned, deadline = early, time.monotonic() + 20
    while not banned and time.monotonic() < deadline:
        time.sleep(1)
        banned = banned_now()
    after_ban = probe_tcp(ns, host, 22, source=member.address, wait=4)
    operator_ok = sh("true").returncode == 0
    report.add("fail2ban-bans",
               active and "sshd" in jails and "odoo" in jails and 0 < maxretry <= 5 and findtime >= 600
               and bantime >= 3600 and banned and after_ban != "data" and operator_ok,
               f"fail2ban active={active}, jails {jails.strip()!r}, sshd maxretry {maxretry} findtime {findtime}s "
               f"bantime {bantime}s; {member.address} banned={banned} after {attempts} failed logins "
               f"(then its SSH: {after_ban}); operator still in: {operator_ok}")


def _check_disks(report: Report, guest: Guest, standin: VaultStandIn, workdir: Path) -> None:
    """SEC-01/DSK-01: no secret the host got from Vault is on any of its disks, and the
    data volume holds no plaintext (the marker written to it is not readable there)."""
    marker = data_marker(standin)
    needles = {f"secret #{i}": s for i, s in enumerate(standin.secrets_served)}
    needles["data marker"] = marker
    patterns = workdir / "needles"
    patterns.write_text("".join(f"{needle}\n" for needle in needles.values()))
    found = []
    for disk_name, path in guest.disks.items():
        # One pass per disk; -o prints each hit, so we can name it.
        hits = subprocess.run(["grep", "-F", "-a", "-o", "-f", str(patterns), str(path)],
                              capture_output=True, text=True, errors="replace").stdout.split()
        found += [f"{name} in {disk_name}" for name, needle in needles.items() if needle in hits]
    names = ", ".join(guest.disks)
    report.add("secrets-not-on-disk", not found,
               f"grep of {names} (after shutdown) for the {len(standin.secrets_served)} values the stand-in "
               f"served and a marker written to the data volume: {found or 'none found'}")
