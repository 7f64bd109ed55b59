"""The issue's case end to end: a VPN-only client with a real team, through preflight.

Six operators used to push user-data over Hetzner's 32 KiB; fifty now preview clean,
with user-data at most 16 KiB and every host file readable in ``--resources``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.conftest import ROOT, team_config

OPERATORS = 50
USER_DATA_BUDGET = 16 * 1024


def test_fifty_operators_preview_clean_and_fit(tmp_path):
    program = tmp_path / "program"
    program.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "components", ".venv"):
        os.symlink(ROOT / name, program / name)
    data = yaml.safe_load((ROOT / "Pulumi.example-private.yaml").read_text())
    for key, value in team_config("example-private", OPERATORS).items():
        data["config"][f"odoo-hosting:{key}"] = value
    (program / "Pulumi.team50.yaml").write_text(yaml.safe_dump(data))
    verdict, resources = tmp_path / "verdict.json", tmp_path / "resources.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "--mock-computed", "--program", str(program), "--stack", "team50",
                           "--policy-pack", str(ROOT / "policies"), "--json", str(verdict),
                           "--resources", str(resources), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (stack,) = json.loads(verdict.read_text())["stacks"]
    assert not [v for v in stack["violations"] if v["enforcement"] == "mandatory"], stack["violations"]
    registered = json.loads(resources.read_text())
    registered = registered["stacks"][0]["resources"] if isinstance(registered, dict) else registered
    by_type = {}
    for r in registered:
        by_type.setdefault(r["type"], []).append(r)
    (server,) = by_type["hcloud:index/server:Server"]
    (bundle,) = by_type["aws:s3/bucketObjectv2:BucketObjectv2"]
    user_data, text = server["inputs"]["userData"], bundle["inputs"]["content"]
    assert len(user_data.encode()) <= USER_DATA_BUDGET
    # Readable: every host file is plain text in the resources, nothing encoded.
    assert "encoding:" not in user_data + text
    assert text.count("[Peer]") == OPERATORS and "PasswordAuthentication no" in text
