"""The pack starts the way the Pulumi engine starts it and answers GetAnalyzerInfo."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from odoo_hosting_policies import ALL_POLICIES

from .conftest import FIREWALL, ROOT, SERVER, UNKNOWN, good_firewall, good_server


def _read_port(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    line: list = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert line and line[0].strip().isdigit(), f"no port printed; stderr: {proc.stderr.read1(4096) if proc.poll() is not None else ''}"
    return line[0].strip().decode()


def _resource(resource_type, props, message=analyzer_pb2.AnalyzeRequest):
    properties = struct_pb2.Struct()
    properties.update(props)
    return message(type=resource_type, properties=properties, name="res",
                   urn=f"urn:pulumi:dev::odoo-hosting::{resource_type}::res")


def _analyze(stub, resource_type, props):
    return list(stub.Analyze(_resource(resource_type, props), timeout=30).diagnostics)


def _analyze_stack(stub, resource_type, props):
    """A stack of one resource (the host-file policies are stack policies)."""
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[_resource(resource_type, props, analyzer_pb2.AnalyzerResource)])
    return list(stub.AnalyzeStack(request, timeout=30).diagnostics)


@contextlib.contextmanager
def running_pack(python: str, pack: str, cwd, env: dict) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack started the way the engine starts it (`python -u -m pulumi.policy <engine> <pack>`),
    as an Analyzer stub; killed by PID afterwards."""
    proc = subprocess.Popen([python, "-u", "-m", "pulumi.policy", "127.0.0.1:1", pack],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        port = _read_port(proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_pack_starts_like_the_engine_and_lists_every_policy():
    with running_pack(sys.executable, "policies", ROOT, {**os.environ, "PYTHONPATH": ""}) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        open_ssh = good_firewall()
        open_ssh["rules"].append({"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": ["::/0"]})
        firewall_diags = _analyze(stub, FIREWALL, open_ssh)
        unknown_user_data = good_server()
        unknown_user_data["userData"] = UNKNOWN
        server_diags = _analyze_stack(stub, SERVER, unknown_user_data)
    assert info.name == "odoo-hosting"
    assert [p.name for p in info.policies] == [p.name for p in ALL_POLICIES]
    by_name = {p.name: p for p in info.policies}
    assert by_name["hcloud-server-sshd-key-only"].framework.reference == "ACC-01"
    advisory = {"docker-odoo-outside-connections-tls", "aws-s3-bucket-key-owned"}  # TLS-03 and whose key: report, never block
    assert all(p.enforcementLevel == 1 for p in info.policies if p.name not in advisory)  # MANDATORY
    assert all(p.enforcementLevel == 0 for p in info.policies if p.name in advisory)  # ADVISORY
    assert "vpnPort" in by_name["hcloud-firewall-no-public-ingress-except-allowed"].configSchema.properties
    ingress = [d for d in firewall_diags if d.policyName == "hcloud-firewall-no-public-ingress-except-allowed"]
    assert ingress and ingress[0].enforcementLevel == 1 and "tcp port 22" in ingress[0].message
    sshd = [d for d in server_diags if d.policyName == "hcloud-server-sshd-key-only"]
    # Unknown user-data at preview: a mandatory violation on that server, never a silent pass.
    assert len(sshd) == 1 and sshd[0].enforcementLevel == 1 and "unknown at preview" in sshd[0].message
    assert sshd[0].urn.endswith("::res")

