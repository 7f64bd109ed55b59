"""Shared test fixtures: one recording Mocks/monitor pair for unit tests.

Every test that builds resources gets fresh Pulumi runtime state from the
``pulumi_run`` fixture and reads back every registration (type, name, URN,
parent, inputs and options) from the recording monitor.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.settings import Settings, parse_settings  # noqa: E402

EXAMPLE_STACKS = ("example-public", "example-private")


def example_raw_config(stack: str) -> dict[str, Any]:
    """An example stack's config values, without the namespace."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in data["config"].items()}


def example_settings(stack: str, **overrides: Any) -> Settings:
    raw = example_raw_config(stack)
    raw.update(overrides)
    return parse_settings(raw)


def team_config(stack: str, operators: int) -> dict[str, Any]:
    """The ``sshKeys`` and ``vpn`` of ``stack`` for a team of ``operators`` operators, each with
    an SSH key and a WireGuard peer (well-formed public keys made for the test)."""
    raw = example_raw_config(stack)
    subnet = ipaddress.ip_network(raw["vpn"]["subnet"])
    digest = lambda label: hashlib.sha256(label.encode()).digest()  # noqa: E731
    blob = lambda n: b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + digest(f"ssh-{n}")  # noqa: E731
    return {
        "vpn": {**raw["vpn"], "peers": [
            {"name": f"op{n:02d}", "publicKey": base64.b64encode(digest(f"wg-{n}")).decode(),
             "address": str(subnet.network_address + 10 + n)} for n in range(operators)]},
        "sshKeys": [{"name": f"op{n:02d}", "publicKey": f"ssh-ed25519 {base64.b64encode(blob(n)).decode()} op{n:02d}@ops"}
                    for n in range(operators)],
    }


def require_tool(name: str) -> str:
    """Path of a system tool; skip without it, but fail under CI=true."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required under CI=true (make test installs it)")
    pytest.skip(f"{name} is not installed")
    raise AssertionError("unreachable")


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict
    provider: str
    protect: bool
    ignore_changes: list
    delete_before_replace: bool
    retain_on_delete: bool
    dependencies: list
    additional_secret_outputs: list
    outputs: dict = field(default_factory=dict)
    id: str = ""


@pytest.fixture(autouse=True)
def _known_hosts_dir(tmp_path_factory, monkeypatch):
    """`pulumi up` writes each client's known_hosts file (components/hostkeys.py); the programs
    that tests run under mocks write it here, never into the tester's ~/.ssh."""
    monkeypatch.setenv("ODOO_HOSTING_KNOWN_HOSTS_DIR", str(tmp_path_factory.mktemp("known-hosts")))


def ed25519_outputs(seed: bytes) -> dict[str, str]:
    """What pulumi-tls answers for an Ed25519 PrivateKey, for a key derived from ``seed`` (32 bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(seed[:32])
    openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return {"privateKeyOpenssh": openssh, "publicKeyOpenssh": public.decode() + "\n"}


TEST_ACCOUNT = "111122223333"
"""The AWS account the mocks' caller identity belongs to."""


class RecordingMocks(pulumi.runtime.Mocks):
    """Realistic provider answers: numeric Hetzner ids, documentation-range
    addresses, valid-looking random values (never a real secret)."""

    def __init__(self) -> None:
        self.counter = 0

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.counter += 1
        outputs = dict(args.inputs)
        digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).digest()
        if args.typ == "hcloud:index/server:Server":
            outputs.update(ipv4Address=f"203.0.113.{self.counter}", ipv6Address=f"2001:db8::{self.counter}",
                           status="running")
        elif args.typ == "hcloud:index/primaryIp:PrimaryIp":
            outputs.update(ipAddress=f"198.51.100.{self.counter}")
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = digest[: int(args.inputs.get("length", 32))]
            outputs.update(base64=base64.b64encode(raw).decode(), hex=raw.hex())
        elif args.typ == "random:index/randomPassword:RandomPassword":
            outputs.update(result=(digest.hex() * 4)[: int(args.inputs.get("length", 16))])
        elif args.typ == "tls:index/privateKey:PrivateKey" and args.inputs.get("algorithm") == "ED25519":
            outputs.update(ed25519_outputs(digest))
        resource_id = str(100000 + self.counter) if args.typ.startswith("hcloud:") else f"{args.name}-id"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": TEST_ACCOUNT, "arn": f"arn:aws:iam::{TEST_ACCOUNT}:user/deployer",
                    "userId": "AIDATEST", "id": TEST_ACCOUNT}
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that keeps every RegisterResource request's details."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=request.custom,
                inputs=rpc.deserialize_properties(request.object),
                provider=request.provider,
                protect=request.protect,
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=request.deleteBeforeReplace,
                retain_on_delete=request.retainOnDelete,
                dependencies=list(request.dependencies),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                outputs=dict(self.resources[response.urn].state),
                id=self.resources[response.urn].id,
            ))
        return response


class Program:
    """Runs code under fresh mocks and answers questions about what it registered."""

    def __init__(self, monitor: RecordingMonitor) -> None:
        self.monitor = monitor

    @property
    def registrations(self) -> list[Registration]:
        return self.monitor.registrations

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registration | None:
        return next((r for r in self.registrations if r.urn == urn), None)


@pytest.fixture
def pulumi_run() -> Callable[..., Program]:
    """Returns run(fn, config=None, stack="test"): runs fn as a Pulumi program
    with fresh runtime state and returns the recorded Program."""

    def run(fn: Callable[[], Any], config: dict[str, str] | None = None, stack: str = "test") -> Program:
        mocks = RecordingMocks()
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_all_config(config or {}, [])
        pulumi_mocks.set_mocks(mocks, project="odoo-hosting", stack=stack, preview=False, monitor=monitor)
        _sync_await(run_pulumi_func(fn))
        return Program(monitor)

    yield run
    pulumi.runtime.set_all_config({}, [])
