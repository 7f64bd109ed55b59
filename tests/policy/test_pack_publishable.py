"""The pack stands alone, as `pulumi policy publish` ships it: its own pinned requirements,
a virtualenv inside its directory, no import from outside policies/.

The install test copies policies/ (and nothing else) to an empty directory, installs
policies/requirements.txt into a fresh virtualenv with --require-hashes, and starts
the pack there the way the engine does."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import empty_pb2

from odoo_hosting_policies import ALL_POLICIES

from .conftest import FIREWALL, ROOT, good_firewall
from .test_pack_starts import _analyze, running_pack

PACK = ROOT / "policies"
THIRD_PARTY = {"pulumi_policy", "pulumi", "yaml", "grpc", "google"}
"""What the pack may import besides the standard library and itself (policies/requirements.txt)."""


def test_requirements_are_the_locks_pins_for_the_packs_needs():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "pack_requirements.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = (PACK / "requirements.txt").read_text()
    assert "pulumi-policy==" in text and "pyyaml==" in text.lower() and "--hash=sha256:" in text
    assert "file://" not in text and "/opt/" not in text


def test_runtime_virtualenv_is_inside_the_pack():
    runtime = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())["runtime"]
    venv = Path(runtime["options"]["virtualenv"])
    assert not venv.is_absolute() and ".." not in venv.parts, venv


def test_the_pack_imports_nothing_from_outside_policies():
    outside = []
    for path in PACK.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in THIRD_PARTY | {"odoo_hosting_policies"}:
                    outside.append(f"{path.relative_to(ROOT)}: {name}")
    assert outside == []


@pytest.mark.slow
def test_the_pack_installs_alone_and_answers_the_analyzer_protocol(tmp_path):
    """About 30 s: a fresh virtualenv from the pack's own requirements (PyPI or pip's cache)."""
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    venv = pack / yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())["runtime"]["options"]["virtualenv"]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                              "--require-hashes", "-r", str(pack / "requirements.txt")],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    with running_pack(str(venv / "bin" / "python"), str(pack), tmp_path, env) as stub:
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        open_ssh = good_firewall()
        open_ssh["rules"].append({"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": ["0.0.0.0/0"]})
        flagged = _analyze(stub, FIREWALL, open_ssh)
        clean = _analyze(stub, FIREWALL, good_firewall())
    assert [p.name for p in info.policies] == [p.name for p in ALL_POLICIES]
    assert any("tcp port 22" in d.message for d in flagged)
    assert not [d for d in clean if d.policyName == "hcloud-firewall-no-public-ingress-except-allowed"]
