"""A client host played by network namespaces, with Debian's Docker engine in it.

:class:`AppHost` builds, for one example stack:

* a ``host`` network namespace with an ``eth0`` veth to an ``internet`` namespace
  (``HOST_INET``; clients ``CLIENT``, ``ATTACKER``, ``BYSTANDER``) and a ``wg0`` veth to a
  ``vpn`` namespace (the stack's VPN host address; peers at .10, .66, .77). The rendered
  nftables ruleset (from the host bundle) is loaded there before the engine starts, as
  nftables.service does on the host;
* a directory ``root`` that plays the host's filesystem: the rendered
  ``odoo-hosting-app-secrets`` script runs for real (its paths under ``root``, its Vault
  fetcher a stand-in printing test secrets) inside the engine's mount namespace, where
  ``/srv/odoo-data`` (the LUKS volume) and ``/run/odoo-hosting`` are tmpfs;
* :class:`Engine`: ``dockerd`` with the rendered ``daemon.json``, its own data root, exec
  root, pid file and socket, in the ``host`` network namespace and a private mount
  namespace (``nsenter --net`` + ``unshare -m``: ``ip netns exec`` would remount /sys and
  hide the cgroup hierarchies). Stopped by PID (dockerd, then its containerd) after every
  container is removed (``live-restore`` would otherwise keep them running);
* the recorded networks and containers created through :mod:`tests.docker.translate`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.app.caddyfile import internal_name
from components.app.secrets import APP_SECRETS_DIR, DB_PASSWORD, ODOO_ADMIN_PASSWORD, ORIGIN_CERT, ORIGIN_KEY
from components.hostconfig import render_host
from components.hostconfig.docker import APP_SECRETS_SCRIPT_PATH, DOCKER_DAEMON_CONFIG_PATH
from components.hostconfig.paths import (
    DATA_MOUNT_POINT,
    NFTABLES_PATH,
    ODOO_LOG_DIR,
    ODOO_LOG_PATH,
    SECRET_FETCH_PATH,
)
from components.settings import Settings
from tests.conftest import ROOT, require_tool
from tests.system.helpers import Namespaces, wait_for

from .images import build_images
from .translate import (
    CONTAINER_TYPE,
    NETWORK_TYPE,
    ContainerSpec,
    create_container,
    create_network,
    remove_container,
    translate_container,
)

HOST_INET, CLIENT, ATTACKER, BYSTANDER = "192.0.2.1", "192.0.2.10", "192.0.2.66", "192.0.2.77"
CLIENT_SCRIPT = Path(__file__).resolve().parent / "client.py"
LE_ISSUER_KEY = "acme-v02.api.letsencrypt.org-directory"


def recorded_resources(stack: str) -> list[dict[str, Any]]:
    """The Docker resources ``python -m preflight --resources`` records for ``stack``, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "resources.json"
        result = subprocess.run([sys.executable, "-m", "preflight", "--stack", stack, "--resources", str(out), "-q"],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.exists(), result.stdout + result.stderr
        stacks = json.loads(out.read_text())["stacks"]
    (only,) = [s for s in stacks if s["stack"] == stack]
    return [r for r in only["resources"] if r["type"].startswith("docker:")]


def bundle_files(settings: Settings) -> dict[str, str]:
    """Host path -> content of every file in the stack's rendered host bundle."""
    bundle = yaml.safe_load(render_host(settings).bundle)
    return {entry["path"]: entry["content"] for entry in bundle["files"]}


class Engine:
    """dockerd in network namespace ``ns``, in a private mount namespace, stopped by PID."""

    def __init__(self, ns: str, daemon_json: str) -> None:
        self.ns = ns
        # Short: the sockets under it must fit a sun_path (108 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="ohdk-", dir="/tmp"))
        (self.dir / "daemon.json").write_text(daemon_json)
        self.socket = f"unix://{self.dir}/docker.sock"
        self.process: subprocess.Popen | None = None
        self.client: docker.DockerClient | None = None

    def start(self) -> docker.DockerClient:
        argv = [require_tool("nsenter"), f"--net=/run/netns/{self.ns}", require_tool("unshare"), "-m",
                "--propagation", "private", require_tool("dockerd"), "--config-file", str(self.dir / "daemon.json"),
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "x"),
                "--pidfile", str(self.dir / "dockerd.pid"), "-H", self.socket]
        with open(self.dir / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = docker.DockerClient(base_url=self.socket, timeout=120, version="1.41")  # no request yet

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError("dockerd exited:\n" + self.log()[-3000:])
            try:
                return bool(client.ping())
            except Exception:  # noqa: BLE001 - not listening yet
                return False
        wait_for(up, timeout=60, interval=0.2, what="dockerd")
        self.client = client
        return client

    def log(self) -> str:
        path = self.dir / "dockerd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def in_mount_ns(self, *cmd: str, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command in the engine's mount namespace (where the containers' bind sources are)."""
        assert self.process is not None
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run([require_tool("nsenter"), "-t", str(self.process.pid), "-m", *cmd], timeout=60, **kwargs)

    def stop(self) -> None:
        if self.client is not None:
            for container in self.client.containers.list(all=True):
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
            self.client.close()
        containerd_pid = self.dir / "x" / "containerd" / "containerd.pid"
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if containerd_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(containerd_pid.read_text().strip()), signal.SIGKILL)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], capture_output=True)


def _certificate(names: list[str], ips: list[str], directory: Path, ca: tuple[Any, Any] | None = None):
    """(cert PEM, key PEM) for names/ips signed by ``ca`` (a test CA made here when None)."""
    now = datetime.datetime.now(datetime.UTC)
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odoo-hosting docker test CA")])
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        ca = (ca_cert, ca_key)
        (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                 (names or ips)[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (leaf.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class AppHost:
    """One example stack's host: namespaces, host files, engine, the recorded app plane."""

    def __init__(self, settings: Settings, recorded: list[dict[str, Any]], netns: Namespaces, workdir: Path,
                 log=print) -> None:
        self.settings = settings
        self.recorded = recorded
        self.netns = netns
        self.workdir = workdir
        self.log = log
        self.root = workdir / "root"
        self.files = bundle_files(settings)
        self.vpn_address = str(settings.vpn.host_address)
        subnet = ipaddress.ip_network(str(settings.vpn.subnet))
        self.vpn_prefix = subnet.prefixlen
        self.vpn_peer, self.vpn_attacker, self.vpn_bystander = (str(subnet.network_address + n) for n in (10, 66, 77))
        self.secrets = {DB_PASSWORD: secrets.token_urlsafe(30), ODOO_ADMIN_PASSWORD: secrets.token_urlsafe(30)}
        self.specs: dict[str, ContainerSpec] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, str] = {}
        self.images: dict[str, str] = {}
        self.engine: Engine | None = None
        self.client: docker.DockerClient | None = None
        self.nft = require_tool("nft")

    # ---- the host -----------------------------------------------------------------------------
    def start(self) -> None:
        self.host = self.netns.add("dh")
        self.internet = self.netns.add("di")
        self.vpn = self.netns.add("dv")
        self.netns.veth(self.host, "eth0", [f"{HOST_INET}/24"],
                        self.internet, "eth0", [f"{CLIENT}/24", f"{ATTACKER}/24", f"{BYSTANDER}/24"])
        self.netns.veth(self.host, "wg0", [f"{self.vpn_address}/{self.vpn_prefix}"],
                        self.vpn, "wg0", [f"{a}/{self.vpn_prefix}" for a in
                                          (self.vpn_peer, self.vpn_attacker, self.vpn_bystander)])
        self.netns.run(self.host, self.nft, "-f", "-", input=self.files[NFTABLES_PATH])
        self.engine = Engine(self.host, self.files[DOCKER_DAEMON_CONFIG_PATH])
        self.client = self.engine.start()
        self._host_files()
        self.images = build_images(self.client, self.engine.socket, log=self.log)

    def at(self, path: str) -> Path:
        """Where a host path lives under the directory that plays the host's filesystem."""
        return self.root / path.lstrip("/")

    def _host_files(self) -> None:
        assert self.engine is not None
        vault = self.workdir / "vault"
        vault.mkdir(mode=0o700)
        values = dict(self.secrets)
        if not self.settings.public:
            cert, key = _certificate([internal_name(self.settings.client_id)], [self.vpn_address], self.workdir)
            values.update({ORIGIN_CERT: cert.decode(), ORIGIN_KEY: key.decode()})
        for name, value in values.items():
            (vault / name).write_text(value)
        fetcher = self.at(SECRET_FETCH_PATH)
        fetcher.parent.mkdir(parents=True)
        fetcher.write_text(f'#!/bin/sh\n# TEST ONLY: stands in for the Vault fetcher.\nexec cat "{vault}/$1"\n')
        fetcher.chmod(0o700)
        for path in (DATA_MOUNT_POINT, APP_SECRETS_DIR.rsplit("/", 1)[0]):
            self.at(path).mkdir(parents=True)
            # tmpfs in the engine's mount namespace: the LUKS volume, and /run.
            result = self.engine.in_mount_ns("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(self.at(path)))
            assert result.returncode == 0, result.stderr
        self.at(ODOO_LOG_DIR).parent.mkdir(parents=True)
        script = self.files[APP_SECRETS_SCRIPT_PATH]
        for path in (SECRET_FETCH_PATH, APP_SECRETS_DIR, DATA_MOUNT_POINT, ODOO_LOG_DIR):
            script = script.replace(path, str(self.at(path)))
        staged = self.at(APP_SECRETS_SCRIPT_PATH)
        staged.write_text(script)
        staged.chmod(0o700)
        result = self.engine.in_mount_ns("/bin/sh", str(staged))
        assert result.returncode == 0, f"app-secrets script failed: {result.stdout}{result.stderr}"
        if self.settings.public:
            self._seed_public_certificate()

    def _seed_public_certificate(self) -> None:
        """TEST ONLY: the public site's certificate as Caddy stores an ACME one on the data volume
        (no ACME server is reachable here; the ACME flow itself is tests/app/test_proxy_real.py's)."""
        assert self.engine is not None
        domains = list(self.settings.domains)
        cert, key = _certificate(domains, [], self.workdir)
        for domain in domains:
            directory = self.at(f"{DATA_MOUNT_POINT}/proxy/caddy/certificates/{LE_ISSUER_KEY}/{domain}")
            meta = json.dumps({"sans": [domain], "issuer_data": {"url": "https://acme.invalid/cert"}})
            script = (f'set -e; mkdir -p "{directory}"; printf "%s" "$1" > "{directory}/{domain}.crt"; '
                      f'printf "%s" "$2" > "{directory}/{domain}.key"; printf "%s" "$3" > "{directory}/{domain}.json"; '
                      f'chmod -R go-rwx "{self.at(DATA_MOUNT_POINT + "/proxy")}"')
            result = self.engine.in_mount_ns("/bin/sh", "-c", script, "seed", cert.decode(), key.decode(), meta)
            assert result.returncode == 0, result.stderr

    # ---- the app plane ----------------------------------------------------------------------------
    def deploy(self) -> None:
        """Networks, then containers, in the recorded order (the program's dependencies)."""
        assert self.client is not None
        for resource in self.recorded:
            if resource["type"] == NETWORK_TYPE:
                create_network(self.client, resource["inputs"])
        for resource in self.recorded:
            if resource["type"] == CONTAINER_TYPE:
                spec = self.run(resource["inputs"], logical_name=resource["name"])
                self.resources[spec.role] = resource
        others = {r["type"] for r in self.recorded} - {NETWORK_TYPE, CONTAINER_TYPE, "pulumi:providers:docker"}
        assert not others, f"recorded Docker resources without a translation: {others}"

    def run(self, inputs: dict[str, Any], logical_name: str) -> ContainerSpec:
        """Create and start one container; it becomes the one of its role."""
        assert self.client is not None
        spec = translate_container(inputs, self.images, self.root, logical_name=logical_name)
        self.ids[spec.role] = create_container(self.client, spec)
        self.specs[spec.role] = spec
        return spec

    def replace(self, role: str, inputs: dict[str, Any] | None = None, delete_first: bool | None = None) -> None:
        """Replace one container as ``pulumi up`` does for a new image or configuration: with
        ``delete_before_replace`` the old one is stopped (its grace period) and removed, then the
        new one created; otherwise the new one is created first (and, with the recorded ``wait``,
        waited for until healthy, as the provider does), then the old one is deleted."""
        assert self.client is not None
        resource = self.resources[role]
        if delete_first is None:
            delete_first = bool(resource["options"]["deleteBeforeReplace"])
        old_spec, old_id = self.specs[role], self.ids[role]
        new_inputs = copy.deepcopy(inputs or resource["inputs"])
        if delete_first:
            remove_container(self.client, old_id, old_spec.stop_timeout)
            self.run(new_inputs, logical_name=resource["name"])
            return
        spec = self.run(new_inputs, logical_name=resource["name"])
        if spec.wait:
            deadline = time.monotonic() + spec.wait_timeout
            while self.client.api.inspect_container(self.ids[role])["State"].get("Health", {}).get("Status") != \
                    "healthy":
                assert time.monotonic() < deadline, f"{spec.name} not healthy within {spec.wait_timeout}s"
                time.sleep(0.2)
        remove_container(self.client, old_id, old_spec.stop_timeout)

    def recorded_inputs(self, role: str) -> dict[str, Any]:
        """A deep copy of the recorded inputs of the container with role label ``role``."""
        return copy.deepcopy(self.resources[role]["inputs"])

    def weakened(self, role: str, suffix: str, change: Callable[[dict[str, Any]], None]) -> str:
        """A copy of a recorded container with one setting weakened by ``change`` (a counterpart
        that a check must fail on), named ``<name>-<suffix>``, without network aliases (so it never
        takes the real one's traffic). Returns its id."""
        assert self.client is not None
        inputs = self.recorded_inputs(role)
        inputs["name"] = f"{self.specs[role].name}-{suffix}"
        inputs["networksAdvanced"] = [{"name": n["name"]} for n in inputs["networksAdvanced"]]
        change(inputs)
        return create_container(self.client, translate_container(inputs, self.images, self.root))

    def in_data(self, script: str) -> None:
        """Run a shell script where the data volume is (the engine's mount namespace)."""
        assert self.engine is not None
        result = self.engine.in_mount_ns("/bin/sh", "-c", script)
        assert result.returncode == 0, result.stderr

    def health(self) -> dict[str, str]:
        assert self.client is not None
        return {role: self.client.api.inspect_container(cid)["State"].get("Health", {}).get("Status", "none")
                for role, cid in self.ids.items()}

    def wait_healthy(self, roles: tuple[str, ...] = ("database", "odoo", "proxy"), timeout: float = 150) -> None:
        def healthy() -> bool:
            states = self.health()
            for role in roles:
                state = self.client.api.inspect_container(self.ids[role])["State"]  # type: ignore[union-attr]
                if not state["Running"] and state.get("ExitCode"):
                    raise AssertionError(f"{role} exited {state['ExitCode']}:\n{self.logs(role)}")
            return all(states.get(role) == "healthy" for role in roles)
        try:
            wait_for(healthy, timeout=timeout, interval=0.5, what=f"healthy {roles}")
        except AssertionError as error:
            raise AssertionError(f"{error}: {self.health()}\n" + "\n".join(
                f"--- {role}:\n{self.logs(role)}" for role in roles)) from None

    def logs(self, role: str) -> str:
        assert self.client is not None
        return self.client.api.logs(self.ids[role], tail=40).decode(errors="replace")

    def odoo_log(self) -> str:
        return self.at(ODOO_LOG_PATH).read_text(errors="replace")

    # ---- clients --------------------------------------------------------------------------------
    def site(self) -> tuple[str, str, str]:
        """(namespace, address, name) a client of this stack uses: the internet for public
        sites, the tunnel for VPN-only ones."""
        if self.settings.public:
            return self.internet, HOST_INET, self.settings.domains[0]
        return self.vpn, self.vpn_address, internal_name(self.settings.client_id)

    def job(self, label: str, path: str = "/web/health", source: str = "", **extra: Any) -> dict[str, Any]:
        _, address, name = self.site()
        return {"label": label, "url": f"https://{address}{path}", "host": name, "sni": name,
                "ca": str(self.workdir / "ca.pem"), "source": source, **extra}

    def http(self, ns: str, jobs: list[dict[str, Any]], timeout: float = 60) -> dict[str, dict[str, Any]]:
        result = self.netns.run(ns, sys.executable, str(CLIENT_SCRIPT), "get", json.dumps(jobs), timeout=timeout)
        return json.loads(result.stdout)

    def replace_under_load(self, role: str, delete_first: bool | None = None, until_healthy: bool = True,
                           settle: float = 2.0) -> dict[str, Any]:
        """Replace ``role`` (:meth:`replace`) while a client in the site's namespace requests
        ``GET /web/login`` through the proxy back to back; then wait until all are healthy.
        Returns the requests in the window, the failed ones, the longest gap between two
        successful answers (seconds) and how long the replacement took until all were healthy
        (``until_healthy=False``: the client keeps going ``settle`` seconds after the replacement)."""
        ns, _, _ = self.site()
        stop = self.workdir / f"stop-{role}-{time.monotonic_ns()}"
        load = self.netns.spawn(ns, sys.executable, str(CLIENT_SCRIPT), "load",
                                json.dumps({**self.job("load", "/web/login"), "stop": str(stop)}))
        time.sleep(2)
        started = time.monotonic()
        try:
            self.replace(role, delete_first=delete_first)
            if until_healthy:
                self.wait_healthy(timeout=180)
            healthy_after = time.monotonic() - started
            time.sleep(settle)
        finally:
            stop.touch()
            out, _ = load.communicate(timeout=30)
        window = [s for s in json.loads(out) if s[1] >= started - 0.5]
        ok_ends = [s[1] for s in window if s[2] == 200]
        gaps = [b - a for a, b in zip(ok_ends, ok_ends[1:], strict=False)]
        return {"role": role, "requests": len(window), "failed": sum(1 for s in window if s[2] != 200),
                "longest_gap_s": max(gaps, default=float("inf")), "healthy_after_s": healthy_after}

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
