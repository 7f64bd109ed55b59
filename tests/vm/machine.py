"""One booted test host: a network namespace, QEMU, WireGuard peers, SSH.

Everything runs inside a network namespace made by the test, which has only
its loopback: QEMU's user-mode network (slirp) there can reach nothing but
that loopback (the guest sees it as 10.0.2.2), its host forwards listen on
127.0.0.1 of the namespace, and the guest's DNS or apt traffic goes nowhere.
The operators' side of the VPN is wireguard-go in the same namespace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .image import FW_CFG_SECRET_ID_NAME, Image

GUEST_HOST_ALIAS = "10.0.2.2"
"""How the guest reaches the namespace's loopback through slirp."""
VAULT_PORT = 8200
S3_PORT = 9000
"""moto (S3 and SNS stand-in) on the namespace's loopback; the guest reaches it at GUEST_HOST_ALIAS."""
DATA_VOLUME_SERIAL = "100042"
DATA_VOLUME_BY_ID = f"/dev/disk/by-id/scsi-0HC_Volume_{DATA_VOLUME_SERIAL}"
PROBED_TCP_PORTS = (22, 80, 443, 5432, 8069, 8072)
"""Forwarded from 127.0.0.1:(10000+port) to the guest: its "internet" side."""
FORWARD_BASE = 10000
WIREGUARD_FORWARD_PORT = 15182


def run(*args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
    return result


def stop_process(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM a process the test started (by its own PID), SIGKILL after ``timeout``."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def vm_parallelism() -> int:
    """How many test VMs boot at once: ODOO_HOSTING_VM_PARALLEL, else one per CPU, at most the four
    boots of tests/vm/test_boot.py."""
    configured = os.environ.get("ODOO_HOSTING_VM_PARALLEL")
    return max(1, int(configured)) if configured else min(4, max(1, os.cpu_count() or 1))


def vm_cpus() -> int:
    """vCPUs per test VM: the machine's CPUs shared among the VMs that boot at once."""
    return max(1, (os.cpu_count() or 1) // vm_parallelism())


def accel_args() -> list[str]:
    """Software emulation by default (/dev/kvm on the machines this was measured on cannot run a
    stock kernel); ODOO_HOSTING_VM_ACCEL=kvm uses KVM where it works (e.g. a CI runner)."""
    if os.environ.get("ODOO_HOSTING_VM_ACCEL") == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]


class NetNS:
    def __init__(self) -> None:
        self.name = f"ohvm-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        run("ip", "netns", "add", self.name)
        run("ip", "-n", self.name, "link", "set", "lo", "up")

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def ip(self, *args: str) -> None:
        run("ip", "-n", self.name, *args)

    def close(self) -> None:
        run("ip", "netns", "del", self.name, check=False)


@dataclass
class WgPeer:
    """An operator's (or another VPN member's) WireGuard end, in the test namespace."""
    name: str
    address: str
    private_key: str
    public_key: str
    table: int
    interface: str = ""
    process: subprocess.Popen | None = None

    @classmethod
    def generate(cls, name: str, address: str, table: int) -> WgPeer:
        private = run("wg", "genkey").stdout.strip()
        public = run("wg", "pubkey", input=private + "\n").stdout.strip()
        # wireguard-go's control socket is /var/run/wireguard/<interface>.sock, shared by
        # every namespace: a unique name keeps concurrent runs apart.
        return cls(name, address, private, public, table, interface=f"wg{uuid.uuid4().hex[:10]}")

    def start(self, ns: NetNS, workdir: Path, host_address: str, host_public_key: str) -> None:
        key_file = workdir / f"wg-{self.name}.key"
        key_file.write_text(self.private_key + "\n")
        key_file.chmod(0o600)
        # Foreground, so the test owns (and later kills) this very PID.
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
        self.process = subprocess.Popen(ns.cmd("wireguard-go", self.interface), env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wireguard-go creates the tun device before its control socket: `wg set` in
        # between finds no socket, falls back to the kernel's netlink and fails with
        # "Protocol not supported". Wait for both.
        control_socket = Path("/var/run/wireguard") / f"{self.interface}.sock"
        deadline = time.monotonic() + 10
        while (not control_socket.is_socket()
               or run(*ns.cmd("ip", "link", "show", self.interface), check=False).returncode != 0):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"wireguard-go {self.interface} did not start "
                                   f"(no link or no {control_socket})")
            time.sleep(0.1)
        run(*ns.cmd("wg", "set", self.interface, "private-key", str(key_file), "peer", host_public_key,
                    "endpoint", f"127.0.0.1:{WIREGUARD_FORWARD_PORT}", "allowed-ips", f"{host_address}/32",
                    "persistent-keepalive", "5"))
        ns.ip("addr", "add", f"{self.address}/32", "dev", self.interface)
        ns.ip("link", "set", self.interface, "up")
        # Each peer reaches the host through its own tunnel: route by source.
        ns.ip("route", "add", f"{host_address}/32", "dev", self.interface, "table", str(self.table))
        ns.ip("rule", "add", "from", self.address, "table", str(self.table))

    def stop(self) -> None:
        stop_process(self.process, 5)


@dataclass
class Guest:
    """A QEMU process booting the test image with a NoCloud seed and a blank data volume."""
    ns: NetNS
    image: Image
    workdir: Path
    user_data: str
    wrapped_secret_id: str
    instance_id: str
    hostname: str
    process: subprocess.Popen | None = None
    disks: dict = field(default_factory=dict)
    boots: int = 0

    @property
    def console_log(self) -> Path:
        """The serial console of the current boot."""
        return self.workdir / f"console-{self.boots}.log"

    def start(self) -> None:
        """A new server: fresh disks, then :meth:`boot`."""
        w = self.workdir
        overlay, data, seed = w / "root.qcow2", w / "data-volume.raw", w / "seed.img"
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image.root), "-F", "raw", str(overlay))
        with open(data, "wb") as handle:  # blank, like a new Hetzner volume
            handle.truncate(512 << 20)
        (w / "user-data").write_text(self.user_data)
        (w / "meta-data").write_text(f"instance-id: {self.instance_id}\nlocal-hostname: {self.hostname}\n")
        run("mkfs.vfat", "-n", "CIDATA", "-C", str(seed), "2048")
        run("mcopy", "-i", str(seed), str(w / "user-data"), str(w / "meta-data"), "::")
        self.disks = {"root overlay": overlay, "data volume": data, "seed": seed}
        self.boot()

    def boot(self, wrapped_secret_id: str | None = None) -> None:
        """Power on with the disks as they are: called again after :meth:`stop`, a later boot of the
        same server (same instance-id), with the wrapped secret-id delivered for that boot."""
        w = self.workdir
        overlay, data, seed = self.disks["root overlay"], self.disks["data volume"], self.disks["seed"]
        self.wrapped_secret_id = wrapped_secret_id or self.wrapped_secret_id
        self.boots += 1
        secret_file = w / "fw_cfg-secret-id"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.wrapped_secret_id)
        forwards = [f"hostfwd=tcp:127.0.0.1:{FORWARD_BASE + p}-:{p}" for p in PROBED_TCP_PORTS]
        forwards.append(f"hostfwd=udp:127.0.0.1:{WIREGUARD_FORWARD_PORT}-:51820")
        cmd = self.ns.cmd(
            "qemu-system-x86_64", "-name", "odoo-hosting-vm-test", "-nodefaults", "-no-user-config",
            "-machine", "q35", *accel_args(), "-smp", str(vm_cpus()), "-m", "1536",
            "-display", "none", "-vga", "none", "-no-reboot",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", "root=LABEL=odoo-test-root rw console=ttyS0 ds=nocloud panic=-1",
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            "-device", "virtio-scsi-pci,id=scsi0",
            "-drive", f"file={data},if=none,id=datavol,format=raw,cache=writeback",
            "-device", f"scsi-hd,bus=scsi0.0,drive=datavol,vendor=HC,product=Volume,serial={DATA_VOLUME_SERIAL}",
            "-netdev", "user,id=net0,net=10.0.2.0/24," + ",".join(forwards),
            "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-fw_cfg", f"name={FW_CFG_SECRET_ID_NAME},file={secret_file}",
            "-qmp", f"unix:{w / 'qmp.sock'},server=on,wait=off",
            "-serial", f"file:{self.console_log}",
        )
        # `ip netns exec` execs QEMU: this PID is QEMU's (it keeps its own copy of the stderr fd).
        with open(w / "qemu.stderr", "w") as stderr:
            self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _qmp(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.workdir / "qmp.sock"))
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            for cmd in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
                while b'"return"' not in (line := reader.readline()) and b'"error"' not in line:
                    if not line:
                        return

    def stop(self, timeout: float = 60) -> bool:
        """ACPI power-off and wait; kill by PID if it does not stop. True if it stopped cleanly."""
        if not self.alive():
            return True
        try:
            self._qmp("system_powerdown")
            self.process.wait(timeout)
            return True
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
            return False

    def kill(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def console_text(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:]) or "(no console log)"


class SSH:
    """ssh from the test namespace through one WireGuard peer."""

    def __init__(self, ns: NetNS, workdir: Path, key: Path, host: str) -> None:
        self.ns, self.key, self.host = ns, key, host
        self.known_hosts = workdir / "known_hosts"
        """Written by the test from the host key it put into Vault: no key is ever accepted blindly."""

    def base(self, source: str, user: str, *options: str) -> list[str]:
        return self.ns.cmd(
            "ssh", "-F", "/dev/null", "-b", source, "-i", str(self.key), "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=8", "-o", "LogLevel=ERROR",
            *options, f"{user}@{self.host}")

    def run(self, source: str, user: str, command: str, *options: str, timeout: float = 60,
            env: dict | None = None) -> subprocess.CompletedProcess:
        args = self.base(source, user, *options) + ["--", command] if command else self.base(source, user, *options)
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(args, 124, error.stdout or "", f"timeout after {timeout}s")
