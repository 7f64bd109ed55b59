"""Boot one rendered host in QEMU and check its promises from the outside.

:func:`boot_and_check` returns a :class:`Report` (one :class:`Check` per
promise) instead of asserting, so a weakened cloud-config or a tampered host
bundle can show that the same checks do report the failure.

The host gets its software the production way: :func:`render_host`'s user-data
on the seed, its bundle in the S3 stand-in (moto, :mod:`.s3_standin`) at the
pinned key, the bucket credential and the incident topic in the Vault stand-in
at the client's ``backup`` path. Facts about the bundle (installed, or refused,
reported and nothing written) are read from outside: the serial console, the
stand-ins' records and the disks after power-off.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.hostconfig import (
    BUNDLE_CACHE_PATH,
    DATA_MOUNT_POINT,
    DATA_VOLUME_MAPPER_NAME,
    DATA_VOLUME_UNIT_NAME,
    DATA_VOLUME_UNIT_PATH,
    MAX_RETRY,
    NFTABLES_TABLE,
    ODOO_LOG_PATH,
    SECRET_NAME_LUKS_KEY,
    SECRET_NAME_SSH_HOST_KEY,
    SECRET_NAME_WIREGUARD_KEY,
    SSHD_DROPIN_PATH,
    VAULT_KV_MOUNT,
    WRAPPED_SECRET_ID_PATH,
    approle_role_id,
    render_boot_config,
    render_host,
)
from components.hostconfig.bundle import BUNDLE_UNIT_NAME
from components.hostconfig.nftables import PUBLIC_TCP_PORTS
from components.hostkeys import known_hosts_line
from components.secrets import (
    SECRET_NAME_AWS_KEY_ID,
    SECRET_NAME_AWS_SECRET,
    SECRET_NAME_INCIDENT_TOPIC,
    SECRET_NAME_RESTIC,
    SECRET_NAME_RESTIC_PREVIOUS,
)
from tests.conftest import ed25519_outputs, example_raw_config, example_settings

from .image import Image, ensure_image
from .machine import (
    DATA_VOLUME_BY_ID,
    FORWARD_BASE,
    GUEST_HOST_ALIAS,
    PROBED_TCP_PORTS,
    S3_PORT,
    SSH,
    VAULT_PORT,
    Guest,
    NetNS,
    WgPeer,
    run,
)
from .s3_standin import MotoStandIn
from .vault_standin import VaultStandIn, make_test_ca, socket_in_netns

BOOT_TIMEOUT = 600
"""Seconds from QEMU start to SSH through the tunnel. TCG is slow, and SSH waits for the bundle,
which waits for cloud-init's final stage: 150-340 s measured on 2 busy cores."""
BACKUP_SECRET_NAMES = (SECRET_NAME_RESTIC, SECRET_NAME_RESTIC_PREVIOUS, SECRET_NAME_AWS_KEY_ID,
                       SECRET_NAME_AWS_SECRET, SECRET_NAME_INCIDENT_TOPIC)
"""What the client's ``backup`` KV path holds (components/secrets.py); the rest is at ``boot``."""
REFUSAL = "host bundle refused"
"""What the host logs (and publishes) when the fetched bundle is not the pinned one."""
LUKS_MAGIC = b"LUKS\xba\xbe"
ODOO_LOG_LINE = "odoo-hosting-vm-test: a line Odoo logged before the reboot"
KEEP_ENV = "ODOO_HOSTING_VM_KEEP"
"""A directory: each boot's serial console and moto's log are copied there (debugging)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fact: bool = False
    """A fact, not a promise: it holds or not, and the good and the tampered boot expect opposite
    answers (shown as yes/no, never counted as a failure by :meth:`Report.failed`)."""


@dataclass
class Report:
    label: str
    checks: dict[str, Check] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    console_tail: str = ""
    reboot: Report | None = None
    """The later boot of the same disks (``boot_and_check(reboot=True)``)."""
    started: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        self.timings.append((phase, time.monotonic() - self.started))

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks[name] = Check(name, bool(ok), detail)

    def fact(self, name: str, holds: bool, detail: str) -> None:
        self.checks[name] = Check(name, bool(holds), detail, fact=True)

    def holds(self, name: str) -> bool | None:
        return self.checks[name].ok if name in self.checks else None

    def failed(self) -> list[Check]:
        return [c for c in self.checks.values() if not c.ok and not c.fact]

    def summary(self) -> str:
        lines = [f"[{self.label}] " + ", ".join(f"{p} {t:.0f}s" for p, t in self.timings)]
        lines += [f"  {('yes ' if c.ok else 'no  ') if c.fact else ('ok  ' if c.ok else 'FAIL')} {c.name}: "
                  f"{c.detail}" for c in self.checks.values()]
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


def tamper_bundle(bundle: str) -> str:
    """The bundle as an attacker with write access to the bucket would replace it: ONE added line in
    the sshd drop-in, before ours (sshd keeps the first value), turning password login on."""
    dropin = bundle.index(f"- path: {SSHD_DROPIN_PATH}\n")
    line = bundle.index("    PasswordAuthentication no\n", dropin)
    return bundle[:line] + "    PasswordAuthentication yes\n" + bundle[line:]


class Lab:
    """One test server's surroundings: the namespace, the Vault and S3/SNS stand-ins, the test's
    keys, the rendered host (bundle in S3 at the pinned key, or ``tamper(bundle)`` there)."""

    def __init__(self, stack: str, workdir: Path, *, tamper: Callable[[str], str] | None = None) -> None:
        self.workdir, self.guest, self.peers = workdir, None, []
        self.vault: VaultStandIn | None = None
        self.s3: MotoStandIn | None = None
        self.ns = NetNS()
        self.marker = f"odoo-hosting-vm-test-marker-{secrets.token_hex(8)}"
        ca, cert, key = make_test_ca(workdir, GUEST_HOST_ALIAS)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm-test", "-f", str(workdir / "id_ed25519"))
        subnet = ipaddress.ip_network(example_raw_config(stack)["vpn"]["subnet"])
        self.peers = [WgPeer.generate("vm-test-operator", str(subnet.network_address + 10), 110),
                      WgPeer.generate("vm-test-member", str(subnet.network_address + 11), 111)]
        settings = self.settings = test_settings(
            stack, ssh_public_key=(workdir / "id_ed25519.pub").read_text().strip(), peers=self.peers)
        host_wg_private = run("wg", "genkey").stdout.strip()
        self.host_wg_public = run("wg", "pubkey", input=host_wg_private + "\n").stdout.strip()

        self.s3 = MotoStandIn(netns=self.ns.name, port=S3_PORT, log=workdir / "moto.log",
                              region=settings.backup.region)
        self.topic_arn = self.s3.create_topic(f"odoo-hosting-{settings.client_id}-incidents")
        pin = render_host(settings).pin
        self.host = render_host(settings, bundle_url=f"http://{GUEST_HOST_ALIAS}:{S3_PORT}/{pin.bucket}/{pin.key}",
                                sns_endpoint=f"http://{GUEST_HOST_ALIAS}:{S3_PORT}/")
        assert self.host.pin.key == pin.key
        self.s3.create_bucket(pin.bucket)
        self.served_bundle = tamper(self.host.bundle) if tamper else self.host.bundle
        """What S3 holds at the pinned key."""
        self.s3.put_object(pin.bucket, pin.key, self.served_bundle)

        # The KV paths exactly as boot.json names them to the host.
        boot = json.loads(render_boot_config(settings))
        self.backup_kv_path = boot["kv_paths"]["backup"]
        backup_values = {name: secrets.token_urlsafe(32) for name in BACKUP_SECRET_NAMES}
        backup_values.update({SECRET_NAME_AWS_KEY_ID: "AKIA" + secrets.token_hex(8).upper(),
                              SECRET_NAME_INCIDENT_TOPIC: self.topic_arn})
        boot_values = {name: secrets.token_urlsafe(32) for name in other_secret_names() - set(BACKUP_SECRET_NAMES)}
        # The host key as pulumi-tls makes it; the test trusts only the known_hosts line the stack
        # would export for it (components.hostkeys), strictly, for every SSH connection.
        host_key = ed25519_outputs(os.urandom(32))
        self.host_public_key = host_key["publicKeyOpenssh"].strip()
        self.known_hosts = known_hosts_line(str(settings.vpn.host_address), self.host_public_key)
        (workdir / "known_hosts").write_text(self.known_hosts + "\n")
        boot_values.update({SECRET_NAME_LUKS_KEY: secrets.token_urlsafe(48),
                            SECRET_NAME_WIREGUARD_KEY: host_wg_private,
                            SECRET_NAME_SSH_HOST_KEY: host_key["privateKeyOpenssh"].strip()})
        self.vault = VaultStandIn(
            netns=self.ns.name, port=VAULT_PORT, cert=cert, key=key, role_id=approle_role_id(settings.client_id),
            kv_mount=VAULT_KV_MOUNT, documents={boot["kv_path"]: boot_values, self.backup_kv_path: backup_values})
        ca_hash = run("openssl", "x509", "-hash", "-noout", "-in", str(ca)).stdout.strip()
        self.user_data = with_test_ca(self.host.user_data, ca.read_text(), ca_hash)

    def start_peers(self) -> None:
        for peer in self.peers:
            peer.start(self.ns, self.workdir, str(self.settings.vpn.host_address), self.host_wg_public)

    def shell(self) -> tuple[SSH, Callable]:
        """SSH as the admin through the operator's tunnel, one control master per boot."""
        ssh = SSH(self.ns, self.workdir, self.workdir / "id_ed25519", str(self.settings.vpn.host_address))
        master = ("-o", "ControlMaster=auto", "-o", f"ControlPath={self.workdir}/cm{self.guest.boots}-%r",
                  "-o", "ControlPersist=300")
        operator, admin = self.peers[0], self.settings.admin_user

        def sh(command: str, timeout: float = 60) -> subprocess.CompletedProcess:
            return ssh.run(operator.address, admin, command, *master, "-o", "BatchMode=yes", timeout=timeout)
        return ssh, sh

    def context(self, ssh: SSH, sh: Callable) -> dict:
        operator, member = self.peers
        return dict(sh=sh, ssh=ssh, ns=self.ns, operator=operator, member=member, settings=self.settings,
                    standin=self.vault, workdir=self.workdir, marker=self.marker,
                    host_public_key=self.host_public_key)

    def vault_reads(self, since: int = 0) -> dict[str, list[int]]:
        """KV path -> HTTP statuses of the host's reads of it (after call number ``since``)."""
        prefix, reads = f"/v1/{VAULT_KV_MOUNT}/data/", {}
        for method, path, code in self.vault.calls[since:]:
            if method == "GET" and path.startswith(prefix):
                reads.setdefault(path[len(prefix):].split("?")[0], []).append(code)
        return reads

    def close(self) -> None:
        if self.guest:
            self.guest.kill()
        for peer in self.peers:
            peer.stop()
        if self.s3:
            self.s3.stop()
        if self.vault:
            self.vault.close()
        self.ns.close()


def boot_and_check(stack: str, *, label: str | None = None,
                   transform: Callable[[str], str] = lambda text: text, ssh_only: bool = False,
                   tamper: Callable[[str], str] | None = None, reboot: bool = False, log=print) -> Report:
    """Boot ``stack``'s rendered host (user-data after ``transform``) and check it from outside.

    ``ssh_only`` runs the SSH checks and then kills the VM (the weakened case needs no more).
    ``tamper``: the S3 object at the pinned key is ``tamper(bundle)``; without SSH keys (they come
    with the bundle) the boot is judged from the console, the stand-ins and the disks.
    ``reboot``: after the checks, S3 is stopped and the same disks boot again (``report.reboot``)."""
    report = Report(label or stack)
    image = ensure_image(log=log)
    report.mark("image built" if image.built else "image ready (cached)")
    workdir = Path(tempfile.mkdtemp(prefix="odoo-hosting-vm-"))
    lab = None
    try:
        lab = Lab(stack, workdir, tamper=tamper)
        lab.guest = guest = Guest(ns=lab.ns, image=image, workdir=workdir, user_data=transform(lab.user_data),
                                  wrapped_secret_id=lab.vault.wrapping_token, instance_id=f"iid-{uuid_hex()}",
                                  hostname=lab.settings.client_id)
        guest.start()
        if tamper:
            _await_bundle_outcome(guest)
            report.mark("bundle refused (console)")
            _power_off(report, guest)
            _bundle_facts(report, lab, image)
            _check_disks(report, guest, lab.vault, workdir, lab.marker)
            return report
        lab.start_peers()
        ssh, sh = lab.shell()
        _await_ssh(guest, sh)
        report.mark("SSH up (through WireGuard)")
        result = sh("until test -e /var/lib/cloud/instance/boot-finished; do sleep 1; done; "
                    "timeout 180 systemctl is-system-running --wait", timeout=240)
        report.mark("cloud-init done")
        report.notes.append(f"is-system-running after boot: {result.stdout.strip()}")
        context = lab.context(ssh, sh)
        _ssh_checks(report, **context)
        if ssh_only:
            report.mark("SSH checks done")
            guest.stop(timeout=30)
            report.mark("VM stopped")
            return report
        _checks(report, **context)
        _bundle_check(report, lab, sh)
        report.mark("checks done")
        _power_off(report, guest)
        _bundle_facts(report, lab, image)
        _check_disks(report, guest, lab.vault, workdir, lab.marker)
        if reboot:
            report.reboot = _reboot_without_s3(lab, f"{report.label} rebooted, S3 down")
    except Exception as error:  # noqa: BLE001 - reported; the test fails on it
        report.error = f"{type(error).__name__}: {error}"
        if lab and lab.guest:
            report.console_tail = lab.guest.console_tail()
    finally:
        if lab:
            lab.close()
        _keep_logs(workdir, report.label)
        shutil.rmtree(workdir, ignore_errors=True)
        report.mark("total")
    return report


def _keep_logs(workdir: Path, label: str) -> None:
    keep = os.environ.get(KEEP_ENV)
    if keep:
        target = Path(keep) / re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
        target.mkdir(parents=True, exist_ok=True)
        for log in [*workdir.glob("console-*.log"), workdir / "moto.log"]:
            if log.exists():
                shutil.copy(log, target / log.name)


def _await_ssh(guest: Guest, sh: Callable) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        if not guest.alive():
            raise RuntimeError("QEMU exited during boot")
        if sh("true", timeout=20).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SSH through WireGuard within {BOOT_TIMEOUT}s")
        time.sleep(2)


def _await_bundle_outcome(guest: Guest) -> None:
    """Until the console shows the bundle unit's verdict (and, for a refusal, whether it was
    reported) and cloud-init's final message: then nothing more is coming."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        console = guest.console_text()
        done = re.search(r"odoo-hosting-secret: (bundle \w+ from |.*(not )?reported to the incident channel)",
                         console)
        if done and re.search(r"Cloud-init v\. \S+ finished", console):
            time.sleep(3)  # the unit's exit reaches the journal
            return
        if not guest.alive():
            raise RuntimeError("QEMU exited during boot")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no verdict of {BUNDLE_UNIT_NAME} on the console within {BOOT_TIMEOUT}s")
        time.sleep(2)


def _power_off(report: Report, guest: Guest) -> None:
    clean = guest.stop()
    report.mark("VM stopped" + ("" if clean else " (killed)"))
    if not clean:
        report.notes.append("not a clean shutdown: the disk facts may miss the last writes")


def _bundle_check(report: Report, lab: Lab, sh: Callable) -> None:
    """The bundle came from S3 (the pinned key, once), with the credential from the backup path.
    Then Odoo's log gets a line, which the reboot must keep (the installer used to truncate it)."""
    pin, files = lab.host.pin, len(yaml.safe_load(lab.host.bundle)["files"])
    gets = [code for method, path, code in lab.s3.requests() if method == "GET" and path == f"/{pin.bucket}/{pin.key}"]
    journal = sh(f"sudo journalctl -b -u {BUNDLE_UNIT_NAME} -o cat; systemctl show -p Result --value {BUNDLE_UNIT_NAME}")
    sh(f"echo '{ODOO_LOG_LINE}' | sudo tee -a {ODOO_LOG_PATH} >/dev/null")
    installed = f"bundle {pin.sha256[:12]} from {pin.url}: {files} of {files} files changed"
    backup_reads = lab.vault_reads().get(lab.backup_kv_path, [])
    report.add("bundle-from-s3",
               gets == [200] and installed in journal.stdout and journal.stdout.split()[-1:] == ["success"]
               and 200 in backup_reads,
               f"S3 GETs of the pinned key {gets}; Vault reads of {lab.backup_kv_path} {backup_reads}; "
               f"journal: {' | '.join(journal.stdout.strip().splitlines()[-3:])!r}")


def _reboot_without_s3(lab: Lab, label: str) -> Report:
    """The same disks boot again with S3 stopped: the cached bundle, nothing changed (Odoo's log
    kept), the data volume (Vault is up), SSH through WireGuard. Waits for the bundle and data
    volume units only, not for the whole boot (cloud-init's per-boot stages: 90 s)."""
    report, guest = Report(label), lab.guest
    try:
        lab.s3.stop()
        report.mark("S3 stopped")
        since = len(lab.vault.calls)
        guest.boot(wrapped_secret_id=lab.vault.rewrap())
        ssh, sh = lab.shell()
        _await_ssh(guest, sh)
        report.mark("SSH up (through WireGuard)")
        sh(f"while systemctl show -p ActiveState --value {BUNDLE_UNIT_NAME} {DATA_VOLUME_UNIT_NAME} | "
           "grep -q activating; do sleep 1; done", timeout=300)
        report.mark("bundle and data volume units done")
        report.add("ssh-key-login", sh("id -un").stdout.strip() == lab.settings.admin_user,
                   f"{lab.settings.admin_user} with the test key through WireGuard after the reboot")
        pin, files = lab.host.pin, len(yaml.safe_load(lab.host.bundle)["files"])
        journal = sh(f"sudo journalctl -b -u {BUNDLE_UNIT_NAME} -o cat; "
                     f"systemctl show -p Result --value {BUNDLE_UNIT_NAME}").stdout
        cached = f"bundle {pin.sha256[:12]} from cache: 0 of {files} files changed"
        reads = lab.vault_reads(since)
        odoo_log = sh(f"sudo grep -c '{ODOO_LOG_LINE}' {ODOO_LOG_PATH}").stdout.strip()
        report.add("bundle-from-cache",
                   cached in journal and journal.split()[-1:] == ["success"] and lab.s3.process.poll() is not None
                   and lab.backup_kv_path not in reads and odoo_log == "1",
                   f"S3 stopped: {lab.s3.process.poll() is not None}; Vault reads this boot {reads} (none of "
                   f"{lab.backup_kv_path}: the bundle needs no credential); Odoo's log line kept: {odoo_log}; "
                   f"journal: {' | '.join(journal.strip().splitlines()[-3:])!r}")
        result = sh(f"""sudo sh -c 'systemctl is-active {DATA_VOLUME_UNIT_NAME}
            findmnt -n -o SOURCE {DATA_MOUNT_POINT}; cat {DATA_MOUNT_POINT}/filestore/vm-test-marker'""")
        out = result.stdout.split()
        paths = [(m, p.split("?")[0], c) for m, p, c in lab.vault.calls[since:]]
        unwraps = [c for m, p, c in paths if p == "/v1/sys/wrapping/unwrap"]
        report.add("data-volume-reopened",
                   out == ["active", f"/dev/mapper/{DATA_VOLUME_MAPPER_NAME}", lab.marker] and unwraps == [200],
                   f"unit, mount, first boot's marker readable: {out[:2]} {lab.marker in out}; unwrap {unwraps}, "
                   f"KV reads {reads}")
        failed = sh("systemctl --failed --no-legend --plain").stdout.strip()
        report.add("no-failed-unit", not failed, f"failed units: {failed or 'none'}")
        report.mark("checks done")
        _power_off(report, guest)
        _check_disks(report, guest, lab.vault, lab.workdir, lab.marker)
    except Exception as error:  # noqa: BLE001 - reported; the test fails on it
        report.error = f"{type(error).__name__}: {error}"
        report.console_tail = guest.console_tail()
    report.mark("total")
    return report


def _read_files(image: Path, paths: list[str], out: Path) -> dict[str, tuple[bytes, int, int, int] | None]:
    """(content, mode, uid, gid) of each path in the ext4 ``image`` (None: absent), read with debugfs."""
    out.mkdir(parents=True)
    commands = out / "commands"
    commands.write_text("".join(f'dump -p "{path}" "{out}/{i}"\n' for i, path in enumerate(paths)))
    subprocess.run(["debugfs", "-f", str(commands), str(image)], capture_output=True, check=True)
    found: dict[str, tuple[bytes, int, int, int] | None] = {}
    for i, path in enumerate(paths):
        dumped = out / str(i)
        found[path] = None
        if dumped.exists():
            st = dumped.stat()
            found[path] = (dumped.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    return found


def _ids(passwd: tuple | None, group: tuple | None) -> dict[str, tuple[int, int]]:
    """user or group name -> (uid, gid) / (gid, gid) from the guest's /etc/passwd and /etc/group."""
    ids: dict[str, tuple[int, int]] = {}
    for line in (group[0] if group else b"").decode().splitlines():
        name, _, gid, *_ = line.split(":") + ["", "", ""]
        ids[f"group:{name}"] = (int(gid), int(gid))
    for line in (passwd[0] if passwd else b"").decode().splitlines():
        name, _, uid, gid, *_ = line.split(":") + ["", "", "", ""]
        ids[name] = (int(uid), int(gid))
    return ids


def _bundle_facts(report: Report, lab: Lab, image: Image) -> None:
    """Facts the good and the tampered boot answer oppositely, read after power-off from the console,
    the SNS stand-in and the disks: the bundle installed; refused on the console; the refusal
    published (no secret in it); the data volume closed; nothing of the bundle written."""
    guest, pin = lab.guest, lab.host.pin
    console = guest.console_text()
    refused = [line.strip() for line in console.splitlines() if REFUSAL in line]
    report.fact("refused-on-console", bool(refused), f"console: {refused[:2] or 'no refusal'}")

    published = lab.s3.published(lab.topic_arn)
    about = [m for m in published if REFUSAL in m["subject"] and pin.sha256 in m["message"]]
    leaked = [f"secret #{i}" for i, value in enumerate(lab.vault.secrets_served)
              if value != lab.topic_arn and any(value in m["subject"] + m["message"] for m in published)]
    report.fact("refusal-published", len(about) == 1 and len(published) == 1 and not leaked,
                f"{len(published)} message(s) on {lab.topic_arn}: "
                f"{[m['subject'] for m in published]}; naming the pin: {len(about)}; secrets in them: {leaked or 'none'}")

    files = yaml.safe_load(lab.host.bundle)["files"]
    paths = [f["path"] for f in files] + [BUNDLE_CACHE_PATH, "/etc/passwd", "/etc/group"]
    root_raw = lab.workdir / f"inspect-root-{guest.boots}.raw"
    run("qemu-img", "convert", "-O", "raw", str(guest.disks["root overlay"]), str(root_raw), timeout=120)
    try:
        now = _read_files(root_raw, paths, lab.workdir / f"inspect-{guest.boots}")
        ssh_dir = run("debugfs", "-R", f"stat /home/{lab.settings.admin_user}/.ssh", str(root_raw)).stdout
    finally:
        root_raw.unlink()
    before = _read_files(image.root, paths, lab.workdir / f"inspect-base-{guest.boots}")
    ids = _ids(now["/etc/passwd"], now["/etc/group"])

    def as_pinned(entry: dict) -> bool:
        got = now[entry["path"]]
        if not entry["content"]:  # Odoo's log: created empty, then Odoo's (and the test writes to it)
            return got is not None
        user, _, group = entry["owner"].partition(":")
        return got is not None and got[:2] == (entry["content"].encode(), int(entry["permissions"], 8)) and \
            got[2] == ids.get(user, (-1, -1))[0] and got[3] == ids.get(f"group:{group or user}", (-1, -1))[0]

    installed = [f["path"] for f in files if as_pinned(f)]
    cache = now[BUNDLE_CACHE_PATH]
    cache_ok = cache is not None and hashlib.sha256(cache[0]).hexdigest() == pin.sha256 and cache[1] == 0o600
    ssh_dir_owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", ssh_dir)
    ssh_dir_mode = re.search(r"Mode:\s+(\d+)", ssh_dir)
    report.fact("bundle-installed", len(installed) == len(files) and cache_ok,
                f"{len(installed)} of {len(files)} bundle files on the root disk with the pinned content, owner "
                f"and mode (not: {sorted(set(f['path'] for f in files) - set(installed))[:4]}); verified cache: "
                f"{cache_ok}; ~/.ssh uid:gid {ssh_dir_owner.groups() if ssh_dir_owner else None} mode "
                f"{ssh_dir_mode.group(1) if ssh_dir_mode else None}")

    # Written by the installer: a path holding its entry's content from the pinned or the served
    # bundle (the empty Odoo log: present at all). Other changes are cloud-init's (it makes the
    # admin's empty authorized_keys), named in the detail.
    served = {f["path"]: f["content"].encode() for f in yaml.safe_load(lab.served_bundle)["files"]}
    written = [f["path"] for f in files if now[f["path"]] is not None and (
        not f["content"] or now[f["path"]][0] in (f["content"].encode(), served.get(f["path"])))]
    others = [p for p in paths[:-3] if now[p] != before[p] and p not in written]
    report.fact("nothing-installed", not written and cache is None,
                f"bundle files written: {len(written)} of {len(files)} {written[:3]}; cache "
                f"{'absent' if cache is None else 'present'}; {DATA_VOLUME_UNIT_PATH} "
                f"{'absent' if now[DATA_VOLUME_UNIT_PATH] is None else 'present'}; changed, not by the bundle: "
                f"{others or 'none'}")

    with open(guest.disks["data volume"], "rb") as volume:
        head = volume.read(1 << 20)
    # systemd's boot status lines shorten the middle: "Starting odoo-hosting-data…he encrypted client data volume".
    unit_ran = bool(re.search(r"odoo-hosting-data|encrypted client data volume", console))
    report.fact("data-volume-closed", not any(head) and now[DATA_VOLUME_UNIT_PATH] is None and not unit_ran,
                f"data volume's first MiB {'blank' if not any(head) else 'LUKS' if head.startswith(LUKS_MAGIC) else 'written'} "
                f"(never formatted, so never opened: no /dev/mapper/{DATA_VOLUME_MAPPER_NAME} possible); unit file "
                f"{'absent' if now[DATA_VOLUME_UNIT_PATH] is None else 'present'}; unit on the console: {unit_ran}")


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


def uuid_hex() -> str:
    return secrets.token_hex(6)


def probe_tcp(ns: NetNS, address: str, port: int, source: str | None = None, wait: float = 4.0) -> str:
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
    except TimeoutError:
        return "silent"
    finally:
        sock.close()


def _host_key_checks(report: Report, *, sh, ssh: SSH, ns: NetNS, operator: WgPeer, settings, workdir: Path,
                     host_public_key: str) -> None:
    """The Pulumi-made key, and only it: what sshd offers, what is on disk, a mismatch refused."""
    host = str(settings.vpn.host_address)
    # ssh-keyscan cannot pick its source: for the scan, the main table routes through the operator's tunnel.
    ns.ip("route", "add", f"{host}/32", "dev", operator.interface, "src", operator.address)
    try:
        scan = subprocess.run(ns.cmd("ssh-keyscan", "-T", "20", host), capture_output=True, text=True, timeout=60)
    finally:
        ns.ip("route", "del", f"{host}/32", "dev", operator.interface)
    offered = sorted(" ".join(line.split()[1:3]) for line in scan.stdout.splitlines() if line and line[0] != "#")
    report.add("ssh-host-key-is-the-stack-key", offered == [host_public_key],
               f"ssh-keyscan {host}: {[o[:40] for o in offered]}; the stack's key {host_public_key[:40]}")
    files = sh("ls /etc/ssh/ | grep '^ssh_host_' ; sudo stat -c %a /etc/ssh/ssh_host_ed25519_key")
    report.add("ssh-host-key-files", files.returncode == 0 and files.stdout.split() == [
        "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "600"], f"/etc/ssh: {files.stdout.split()}")
    wrong = workdir / "known_hosts.wrong"
    wrong.write_text(known_hosts_line(host, ed25519_outputs(os.urandom(32))["publicKeyOpenssh"]) + "\n")
    trusted, ssh.known_hosts = ssh.known_hosts, wrong  # ssh keeps the first value of an option: swap the file
    try:
        result = ssh.run(operator.address, settings.admin_user, "true", "-o", "BatchMode=yes", timeout=40)
    finally:
        ssh.known_hosts = trusted
    report.add("ssh-host-key-mismatch-refused",
               result.returncode == 255 and "Host key verification failed" in result.stderr,
               f"a known_hosts with another key: rc={result.returncode} {result.stderr.strip()[-80:]!r}")


def _ssh_checks(report: Report, *, sh, ssh: SSH, operator: WgPeer, settings, workdir: Path, **context) -> None:
    admin = settings.admin_user
    host = str(settings.vpn.host_address)
    _host_key_checks(report, sh=sh, ssh=ssh, ns=context["ns"], operator=operator, settings=settings,
                     workdir=workdir, host_public_key=context["host_public_key"])

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
               f"sshd -T: {wrong or 'as required'}")

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
            standin: VaultStandIn, workdir: Path, marker: str, **_) -> None:
    host = str(settings.vpn.host_address)

    # DSK-01: LUKS2 mapping opened at boot, mounted where the data lives. The marker goes in
    # base64 so its plaintext is never on a command line (sudo logs those to the journal).
    marker_b64 = base64.b64encode(marker.encode()).decode()
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


def _check_disks(report: Report, guest: Guest, standin: VaultStandIn, workdir: Path, marker: str) -> None:
    """SEC-01/DSK-01: no secret the host got from Vault is on any of its disks, and the
    data volume holds no plaintext (the marker written to it is not readable there)."""
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
