"""One helper per mechanism the system tests share.

- :func:`require_root`: root (network namespaces, device ownership) or skip; fail under CI=true.
- :func:`materialise`: the rendered user-data's ``write_files``, written into a
  staging root by cloud-init's OWN ``cc_write_files`` (Debian's python3), and the
  host bundle's files by the shipped fetcher's own ``install``, so modes and
  owners are what the host makes of them; :func:`staged` maps a host path into it.
- :func:`verify_units`: ``systemd-analyze verify`` on staged units, with the staged
  scripts at their real paths.
- :class:`Namespaces`: network namespaces made with ``ip netns add`` (unique names
  per run), veth pairs with private test addresses, processes started inside them;
  everything is stopped by PID and deleted in :meth:`Namespaces.close`.
- :func:`listen`: TCP listeners and UDP echo servers to probe against.
- :func:`probe` / :func:`probe_many`: TCP connects and UDP echo probes from inside a
  namespace, all at once: "open", "dropped" (no answer) or "refused".
- :func:`wireguard_link`: a WireGuard interface, the kernel's or wireguard-go's.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from components.hostconfig import SECRET_FETCH_PATH, HostConfiguration
from tests.conftest import require_tool

SYSTEM_PYTHON = "/usr/bin/python3"
"""Debian's python3, which has cloud-init's modules (the venv does not)."""

_RUN = f"{os.getpid() % 100000:05d}"
_COUNTER = itertools.count()


def unique_name(role: str, limit: int = 15) -> str:
    """A name unique to this test run (interface names may have at most 15 chars)."""
    name = f"oh{_RUN}{next(_COUNTER)}{role}"
    assert len(name) <= limit, name
    return name


def require_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("these system tests need root under CI=true (network namespaces, chown)")
    pytest.skip("needs root (network namespaces, chown)")


# ---- staging root -------------------------------------------------------------------

_MATERIALISE = r"""
import importlib.util, json, os, pwd, sys
from importlib.machinery import SourceFileLoader
from cloudinit import util
from cloudinit.config import cc_write_files
root, user_data, bundle, fetcher = sys.argv[1:5]
doc = util.load_yaml(open(user_data).read())
files = [dict(f, path=os.path.join(root, f["path"].lstrip("/"))) for f in doc["write_files"]]
cc_write_files.write_files("write_files", files, "root:root")
paths = [f["path"] for f in files]
if bundle:
    # The bundle's files, written by the shipped fetcher's own install().
    loader = SourceFileLoader("fetcher", os.path.join(root, fetcher.lstrip("/")))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("fetcher", loader))
    loader.exec_module(module)
    install = module.install
    def known(owner):
        try:
            pwd.getpwnam(owner.partition(":")[0])
            return owner
        except KeyError:  # the host's admin user does not exist here
            return "root:root"
    for entry in util.load_yaml(open(bundle).read())["files"]:
        path = os.path.join(root, entry["path"].lstrip("/"))
        install(dict(entry, path=path, owner=known(entry["owner"])))
        paths.append(path)
print(json.dumps(paths))
"""


def materialise(host: HostConfiguration | str, root: Path) -> Path:
    """Write the host's files under ``root``: user-data's with cloud-init's own code, the
    bundle's (when ``host`` is a :class:`~components.hostconfig.HostConfiguration`) with the
    installer the host runs (the fetcher's ``install``)."""
    require_root()  # cloud-init chowns to root:root and root:adm
    require_tool("cloud-init")
    user_data = host if isinstance(host, str) else host.user_data
    source = root.parent / f"{root.name}.user-data"
    source.write_text(user_data)
    bundle = ""
    if not isinstance(host, str):
        bundle_file = root.parent / f"{root.name}.bundle.yaml"
        bundle_file.write_text(host.bundle)
        bundle = str(bundle_file)
    root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([SYSTEM_PYTHON, "-c", _MATERIALISE, str(root), str(source), bundle, SECRET_FETCH_PATH],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return root


def staged(root: Path, path: str) -> Path:
    """Where a host path lives inside the staging root."""
    return root / path.lstrip("/")


def verify_units(staging_root: Path, *units: Path) -> subprocess.CompletedProcess:
    """``systemd-analyze verify`` on staged unit files, with the staged /usr/local/sbin
    scripts visible at their real paths (a tmpfs in a private mount namespace)."""
    require_root()
    analyze = require_tool("systemd-analyze")
    unshare = require_tool("unshare")
    sbin = staged(staging_root, "/usr/local/sbin")
    script = 'mount -t tmpfs tmpfs /usr/local/sbin && cp -p "$0"/* /usr/local/sbin/ && exec "$@"'
    return subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c", script, str(sbin),
                           analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=60)


# ---- network namespaces -------------------------------------------------------------

class Namespaces:
    """Network namespaces for one test; :meth:`close` stops and deletes everything."""

    def __init__(self) -> None:
        require_root()
        self.ip = require_tool("ip")
        self.names: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.cleanups: list = []

    def add(self, role: str) -> str:
        name = unique_name(role, limit=64)
        subprocess.run([self.ip, "netns", "add", name], check=True, capture_output=True)
        self.names.append(name)
        self.run(name, self.ip, "link", "set", "lo", "up")
        return name

    def run(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30,
            **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run([self.ip, "netns", "exec", ns, *cmd], timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} in {ns} failed ({result.returncode}): "
                                 f"{result.stdout}{result.stderr}")
        return result

    def veth(self, ns_a: str, if_a: str, addrs_a: Sequence[str],
             ns_b: str, if_b: str, addrs_b: Sequence[str]) -> None:
        """A veth pair ns_a:if_a <-> ns_b:if_b with the given address/prefix lists."""
        tmp = unique_name("v")
        subprocess.run([self.ip, "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", tmp,
                        "netns", ns_b], check=True, capture_output=True)
        self.run(ns_b, self.ip, "link", "set", tmp, "name", if_b)
        for ns, ifname, addrs in ((ns_a, if_a, addrs_a), (ns_b, if_b, addrs_b)):
            for addr in addrs:
                self.run(ns, self.ip, "addr", "add", addr, "dev", ifname, *(["nodad"] if ":" in addr else []))
            self.run(ns, self.ip, "link", "set", ifname, "up")

    def spawn(self, ns: str | None, *cmd: str, output: Path | None = None, **kwargs) -> subprocess.Popen:
        """Start a process inside ``ns`` (``ip netns exec`` execs it: its PID is ours to stop).

        Its stdout+stderr go to a pipe, or to the file ``output`` for chatty daemons
        (a full pipe would block them)."""
        argv = [self.ip, "netns", "exec", ns, *cmd] if ns else list(cmd)
        sink = open(output, "w") if output else subprocess.PIPE  # noqa: SIM115  (closed below, once Popen has it)
        kwargs.setdefault("stdout", sink)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("text", True)
        try:
            process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        finally:
            if output:
                sink.close()
        process.output_path = output
        self.processes.append(process)
        return process

    @staticmethod
    def output(process: subprocess.Popen) -> str:
        """What a process started with ``output=`` has written so far."""
        return process.output_path.read_text() if process.output_path else ""

    def stop(self, process: subprocess.Popen) -> str:
        """Stop one process we started (by its PID): TERM, then KILL. Returns its output."""
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        output = self.output(process)
        if process.stdout and not process.stdout.closed:
            output = process.stdout.read() or ""
            process.stdout.close()
        return output

    def close(self) -> None:
        errors = []
        for process in reversed(self.processes):
            try:
                self.stop(process)
            except Exception as error:  # keep cleaning up
                errors.append(error)
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:
                errors.append(error)
        for name in reversed(self.names):
            subprocess.run([self.ip, "netns", "del", name], capture_output=True)
        self.names.clear()
        if errors:
            raise errors[0]


# ---- probes ----------------------------------------------------------------------------

LISTENER = r"""
import socket, sys, threading, time
address = sys.argv[1]
tcp = [int(p) for p in sys.argv[2].split(",") if p]
udp = [int(p) for p in sys.argv[3].split(",") if p]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
held = []
for port in tcp:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port)); s.listen(64); held.append(s)
def serve(s):
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(b"echo:" + data, peer)
for port in udp:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((address, port)); held.append(s)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
while True:
    for s in held:
        if s.type == socket.SOCK_STREAM:
            s.setblocking(False)
            try:
                while True:
                    s.accept()[0].close()
            except BlockingIOError:
                pass
    time.sleep(0.02)
"""

_PROBE = r"""
import json, socket, sys, threading
timeout, jobs = float(sys.argv[1]), json.loads(sys.argv[2])
seen = {}
def attempt(label, source, target, check):
    kind, port = check.split("/")
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    key = f"{label} {check}" if label else check
    try:
        if source: s.bind((source, 0))
        s.connect((target, int(port)))
        if kind == "udp":
            s.send(b"probe")
            seen[key] = "open" if s.recv(2048) == b"echo:probe" else "odd"
        else:
            seen[key] = "open"
    except socket.timeout:
        seen[key] = "dropped"
    except OSError:
        seen[key] = "refused"
    finally:
        s.close()
threads = [threading.Thread(target=attempt, args=(label, source, target, check))
           for label, source, target, checks in jobs for check in checks]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(seen))
"""


def listen(namespaces: Namespaces, ns: str, address: str, tcp: Iterable[int] = (),
           udp: Iterable[int] = ()) -> subprocess.Popen:
    """TCP listeners (accept, close) and UDP echo servers on ``address`` in ``ns``."""
    process = namespaces.spawn(ns, sys.executable, "-c", LISTENER, address,
                               ",".join(map(str, tcp)), ",".join(map(str, udp)))
    line = process.stdout.readline()
    assert line.strip() == "ready", line + (process.stdout.read() if process.poll() is not None else "")
    return process


PROBE_TIMEOUT = 1.0
"""Seconds before a probe counts as dropped. Over veth a connect takes microseconds;
the margin is for a loaded 2-core CI machine (0.4 s gave false "dropped" there)."""


def probe(namespaces: Namespaces, ns: str, target: str, checks: Iterable[str], source: str = "",
          timeout: float = PROBE_TIMEOUT) -> dict[str, str]:
    """``{"tcp/22": "open"|"dropped"|"refused", "udp/51820": "open"|"dropped"...}`` seen from ``ns``."""
    return probe_many(namespaces, ns, [("", source, target, list(checks))], timeout)


def probe_many(namespaces: Namespaces, ns: str, jobs: Sequence[tuple[str, str, str, Sequence[str]]],
               timeout: float = PROBE_TIMEOUT) -> dict[str, str]:
    """All probes at once from ``ns``: jobs are (label, source, target, checks); keys "label check"."""
    result = namespaces.run(ns, sys.executable, "-c", _PROBE, str(timeout), json.dumps(jobs), timeout=30)
    return json.loads(result.stdout)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- WireGuard ---------------------------------------------------------------------------------

_WIREGUARD_GO = 'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0700 /run/wireguard && exec "$0" -f "$1"'


def kernel_has_wireguard(namespaces: Namespaces, ns: str) -> bool:
    probe_name = unique_name("k")
    result = namespaces.run(ns, namespaces.ip, "link", "add", probe_name, "type", "wireguard", check=False)
    if result.returncode == 0:
        namespaces.run(ns, namespaces.ip, "link", "del", probe_name)
    return result.returncode == 0


def wireguard_link(namespaces: Namespaces, ns: str, name: str = "wg0"):
    """A WireGuard interface ``name`` in ``ns``: the kernel's, or wireguard-go's where the
    kernel lacks WireGuard. wireguard-go runs in a private mount namespace with its own
    /run (its control socket path is not per network namespace), so ``wg0`` can be used
    in several namespaces at once. Returns ``wg(*args, input=None)`` running ``wg`` on it;
    ``wg.prefix`` runs any command where ``wg`` sees the interface."""
    if kernel_has_wireguard(namespaces, ns):
        namespaces.run(ns, namespaces.ip, "link", "add", name, "type", "wireguard")

        def wg(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
            return namespaces.run(ns, require_tool("wg"), *args, input=input)
        wg.implementation = "kernel"
        wg.prefix = [namespaces.ip, "netns", "exec", ns]
        return wg
    wireguard_go = require_tool("wireguard-go")
    nsenter = require_tool("nsenter")
    daemon = namespaces.spawn(ns, require_tool("unshare"), "-m", "--propagation", "private",
                              "sh", "-c", _WIREGUARD_GO, wireguard_go, name)

    def wg(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([nsenter, "-t", str(daemon.pid), "-m", "-n", require_tool("wg"), *args],
                                input=input, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"wg {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def ready() -> bool:
        if daemon.poll() is not None:
            raise AssertionError("wireguard-go exited: " + namespaces.stop(daemon))
        return subprocess.run([nsenter, "-t", str(daemon.pid), "-m", "-n", require_tool("wg"), "show", name],
                              capture_output=True).returncode == 0
    wait_for(ready, timeout=10, interval=0.05, what=f"wireguard-go {name} in {ns}")
    wg.implementation = "wireguard-go"
    wg.prefix = [nsenter, "-t", str(daemon.pid), "-m", "-n"]
    return wg
