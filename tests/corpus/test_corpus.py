"""preflight over a corpus of small hand-written programs, one per generic
case of controls.md ("Resource-level cases any conforming policy pack must
catch"): each must come back with its control ID on its resource.

The programs use no odoo-hosting component: the pack must judge any
program's resources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent

# program directory -> {(control ID, resource name)} that must be reported
EXPECTED = {
    "firewall-ssh-world": {("ACC-02", "ssh-world")},
    "server-outside-eu": {("RES-01", "us-server")},
    "server-without-keys": {("ACC-01", "keyless")},
    "server-password-ssh": {("ACC-01", "pw-server")},
    "volume-automount": {("DSK-01", "auto")},
    "volume-unprotected": {("REL-01", "unprotected")},
    "bucket-outside-eu": {("RES-01", "us-bucket"), ("BKP-02", "us-bucket")},
    "bucket-unhardened": {("BKP-04", "bare")},
    "iam-wildcard": {("BKP-05", "everything")},
    "container-privileged": {("ISO-02", "privileged"), ("ISO-02", "host-network"), ("ISO-02", "socket")},
    "tls-weak-key": {("TLS-04", "weak")},
    "tls-long-cert": {("TLS-04", "year-long")},
    "vault-wildcard-sudo": {("SEC-02", "too-wide")},
}


@pytest.fixture(scope="module")
def verdict() -> dict[str, dict]:
    programs = sorted(p.parent.name for p in CORPUS.glob("*/Pulumi.yaml"))
    assert sorted(EXPECTED) == programs, "every corpus program needs its expectation (and vice versa)"
    args = [a for name in programs for a in ("--program", str(CORPUS / name))]
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--json", "-", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # mandatory violations, no error
    return {Path(s["program"]).name: s for s in json.loads(proc.stdout)["stacks"]}


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_generic_case_is_reported_with_its_control_id(verdict, program):
    stack = verdict[program]
    assert stack["error"] is None
    found = {(control, v["urn"].rsplit("::", 1)[-1])
             for v in stack["violations"] if v["enforcement"] == "mandatory" for control in v["controls"]}
    missing = EXPECTED[program] - found
    assert not missing, f"{program}: not reported {sorted(missing)}; reported {sorted(found)}"
