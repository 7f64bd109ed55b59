"""`--report`: the Markdown compliance report a pull request gets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from preflight.analyzer import PolicyInfo, Violation
from preflight.compliance import control_rows, control_titles, render_report
from preflight.report import StackResult

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken_host"
# The fixture builds a client's stack without the ClientStack component: its policy config names the
# stack for the client-label rules (ISO-01), which judge only client stacks.
BROKEN_CONFIG = BROKEN / "policy-config.json"
URN = "urn:pulumi:dev::p::hcloud:index/server:Server::web"


def _status(report: str, stack: str, control: str) -> str:
    section = report.split(f"## `{stack}`", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| **{control}**"))
    return row.split("|")[2].strip()


def _run(*args: str, tmp_path: Path) -> str:
    out = tmp_path / "report.md"
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--mock-computed", "--report", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, 1), proc.stderr
    return out.read_text()


def test_report_for_the_examples_keeps_every_control_and_names_the_insecure_connection(tmp_path):
    report = _run(tmp_path=tmp_path)
    assert report.startswith("# Policy compliance: PASS")
    for stack in ("example-public", "example-private"):
        for control in ("ACC-01", "ACC-02", "DSK-01", "REL-01", "RES-01", "ISO-01"):
            assert _status(report, stack, control) == "✅ kept", (stack, control)
    assert _status(report, "example-private", "TLS-03") == "⚠️ advisory"
    insecure = report.split("## `example-private`", 1)[1].split("### Insecure connections", 1)[1]
    assert "legacy-inbox" in insecure.split("\n## ", 1)[0]


def test_report_for_a_broken_program_marks_violations_and_what_does_not_apply(tmp_path):
    report = _run("--program", str(BROKEN), "--policy-config", str(BROKEN_CONFIG), tmp_path=tmp_path)
    assert report.startswith("# Policy compliance: FAIL")
    for control in ("ACC-01", "ACC-02", "DSK-01", "REL-01", "RES-01", "ISO-01"):
        assert _status(report, "dev", control) == "❌ violated", control
    # No container, bucket, key or Vault resource in that program.
    for control in ("ISO-02", "TLS-04", "BKP-05", "SEC-02"):
        assert _status(report, "dev", control) == "➖ not applicable", control
    assert re.search(r"\| \*\*ACC-02\*\*.*`admin-fw`", report)
    assert "<details><summary>Findings" in report


def _policy(name: str, controls: list[str], spec: str = "", kind: str = "resource") -> PolicyInfo:
    return PolicyInfo(name=name, description="Checks that x", enforcement="mandatory", controls=controls,
                      framework="odoo-hosting-controls", specification=spec, kind=kind)


def test_status_rules():
    policies = [_policy("p-ssh-keys", ["ACC-01"]), _policy("p-fw-open", ["ACC-02"]),
                _policy("p-tls-out", ["TLS-03"]), _policy("p-vault-x", ["SEC-02"])]
    result = StackResult(program=".", stack="s", judged={"p-ssh-keys": [URN], "p-fw-open": [URN],
                                                         "p-tls-out": [URN], "p-vault-x": []})
    result.violations = [Violation("p-fw-open", ["ACC-02"], "mandatory", URN, "open"),
                         Violation("p-tls-out", ["TLS-03"], "advisory", URN, "plain")]
    rows = {r["control"]: r for r in control_rows(result, policies)}
    assert rows["ACC-01"]["status"] == "kept" and rows["ACC-01"]["resources"] == ["web"]
    assert rows["ACC-02"]["status"] == "violated"
    assert rows["TLS-03"]["status"] == "advisory"
    assert rows["SEC-02"]["status"] == "not applicable" and rows["SEC-02"]["resources"] == []


def test_titles_come_from_the_framework_specification():
    titles = control_titles([_policy("p", ["ACC-01", "ACC-02"], "ACC-01: Key-only SSH. ACC-02: No open ports.")])
    assert titles == {"ACC-01": "Key-only SSH.", "ACC-02": "No open ports."}


def test_a_stack_error_is_reported_not_hidden():
    result = StackResult(program=".", stack="bad", error="stack bad: odoo-hosting:location: got 'ash'")
    report = render_report([result], [_policy("p", ["ACC-01"])])
    assert report.startswith("# Policy compliance: ERROR") and "got 'ash'" in report
