"""The pull-request workflow cannot run here; these tests keep it valid:
GitHub's workflow JSON schema (vendored by check-jsonschema, offline) plus
the promises it makes (tests, preflight report, one PR comment, fail on a
mandatory violation, deploy disabled until credentials exist)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "policy-check.yml"


def _lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=60)


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_passes_githubs_workflow_schema():
    result = _lint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_lint_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:", 1))
    assert _lint(broken).returncode != 0


def test_pull_requests_run_make_test_and_the_preflight_report():
    steps = _workflow()["jobs"]["verify"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "make test" in runs
    assert re.search(r"python -m preflight .*--report \S+\.md", runs)


def test_one_comment_is_updated_in_place_and_a_violation_fails_the_check():
    jobs = _workflow()["jobs"]
    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}
    script = next(s["with"]["script"] for s in comment["steps"] if "github-script" in s.get("uses", ""))
    assert "updateComment" in script and "createComment" in script and "marker" in script
    fail = next(s for s in comment["steps"] if s.get("name", "").startswith("Fail on"))
    assert "preflight-exit != '0'" in fail["if"] and "exit 1" in fail["run"]


def test_workflow_token_is_read_only_by_default():
    assert _workflow()["permissions"] == {"contents": "read"}


def test_deploy_is_disabled_until_credentials_exist_and_uses_the_policy_pack():
    workflow = _workflow()
    deploy = workflow["jobs"]["deploy"]
    assert "vars.PULUMI_DEPLOY_ENABLED == 'true'" in deploy["if"]
    pulumi_steps = [s for s in deploy["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert [s["with"]["command"] for s in pulumi_steps] == ["preview", "up"]
    assert all(s["with"]["policyPacks"] == "policies" for s in pulumi_steps)
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    assert sorted(deploy["strategy"]["matrix"]["stack"]) == stacks
