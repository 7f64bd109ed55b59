"""preflight with the repository's real policy pack: the examples are clean,
a hand-written broken program is flagged with the right control IDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken_host"
# The fixture builds a client's stack without the ClientStack component: its policy config names the
# stack for the client-label rules (ISO-01), which judge only client stacks.
BROKEN_CONFIG = BROKEN / "policy-config.json"


def _preflight(*args: str) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--json", "-", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_example_stacks_pass_the_real_pack_with_no_violation():
    code, report, stderr = _preflight()
    stacks = {s["stack"]: s for s in report["stacks"]}
    assert set(stacks) == {"example-public", "example-private"}, stderr
    for stack in stacks.values():
        assert stack["error"] is None
        assert stack["resources"] > 10
        # The only finding: example-private's deliberately plaintext legacy mailbox (TLS-03, advisory).
        others = [v for v in stack["violations"] if v["controls"] != ["TLS-03"]]
        assert others == [], others
    assert code == 0


def test_insecure_outside_connection_is_advisory_and_listed_for_the_client():
    _code, report, _stderr = _preflight()
    stacks = {s["stack"]: s for s in report["stacks"]}
    assert stacks["example-public"]["insecure_connections"] == []
    (finding,) = stacks["example-private"]["violations"]
    assert finding["enforcement"] == "advisory" and finding["controls"] == ["TLS-03"]
    assert stacks["example-private"]["insecure_connections"] == [{
        "name": "legacy-inbox", "url": "imap://imap.globex.example:143",
        "resource": "globex-internal-app-odoo", "policy": "docker-odoo-outside-connections-tls"}]


def test_broken_program_is_flagged_with_each_control_id():
    code, report, stderr = _preflight("--program", str(BROKEN), "--policy-config", str(BROKEN_CONFIG))
    assert code == 1, stderr
    (stack,) = report["stacks"]
    by_control: dict[str, list[dict]] = {}
    for violation in stack["violations"]:
        assert violation["enforcement"] == "mandatory"
        for control in violation["controls"]:
            by_control.setdefault(control, []).append(violation)
    for control in ("RES-01", "ACC-01", "ACC-02", "DSK-01", "REL-01", "ISO-01"):
        assert control in by_control, f"{control} not reported: {sorted(by_control)}"

    def urns(control):
        return {v["urn"].rsplit("::", 1)[-1] for v in by_control[control]}

    assert "web" in urns("RES-01") and "web" in urns("ACC-01")
    assert "admin-fw" in urns("ACC-02")
    assert "data" in urns("DSK-01") and "data" in urns("REL-01")
    assert {"net"} <= urns("ISO-01")


def test_at_preview_the_examples_are_fully_judged_and_get_the_report_mock_values_give(tmp_path):
    """As `pulumi preview` of a new stack (no --mock-computed): computed outputs of the resources being
    created are unknown, and still no policy of the examples is left unjudged, because every input a
    policy reads is known from settings at preview (bucket and user ARNs are derived from names and the
    caller identity's account; KMS keys are granted in their own policies instead of by key ARN). The
    compliance report is the one --mock-computed gives, line for line."""
    known_hosts = tmp_path / "known_hosts"

    def run(*args: str) -> tuple[int, str, str]:
        out = tmp_path / f"report{len(args)}.md"
        proc = subprocess.run([sys.executable, "-m", "preflight", "--report", str(out), *args],
                              cwd=ROOT, env=dict(os.environ, ODOO_HOSTING_KNOWN_HOSTS_DIR=str(known_hosts)),
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, out.read_text(), proc.stdout + proc.stderr

    code, report, stderr = run()
    assert code == 0, stderr
    assert report.startswith("# Policy compliance: PASS")
    assert "preflight: PASS:" in stderr and "mock-computed" not in stderr
    assert "not judged" not in report.lower()
    mock_code, mock_report, _ = run("--mock-computed")
    assert (code, report) == (mock_code, mock_report)
    # Both are previews: `pulumi up` writes the host's known_hosts from its key, a check never does
    # (with --mock-computed it wrote mock keys there, and parallel stacks of one client raced on it).
    assert not known_hosts.exists()
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--json", "-"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert not [v for s in json.loads(proc.stdout)["stacks"] for v in s["violations"] if v["not_judged"]]
