"""The pull-request workflow cannot run here; these tests keep it valid:
GitHub's workflow JSON schema (vendored by check-jsonschema, offline) plus
the promises it makes (tests, preflight report, one PR comment, fail on a
mandatory violation, deploy disabled until credentials exist, a matrix
computed from the stack files, the VPN joined and the host key pinned before
Pulumi runs), and the two tools it runs (tools/stack_matrix.py, tools/ci_vpn.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.stack_matrix import DEPLOYER_PEER, matrix

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "policy-check.yml"
JOIN_VPN = ROOT / ".github" / "deploy" / "join-vpn.sh"


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


def test_the_matrix_is_computed_from_the_stack_files_not_written_by_hand():
    jobs = _workflow()["jobs"]
    runs = "\n".join(step.get("run", "") for step in jobs["stacks"]["steps"])
    assert "tools/stack_matrix.py" in runs
    for name in ("deploy", "preview"):
        assert jobs[name]["needs"] == "stacks"
        assert jobs[name]["strategy"]["matrix"] == "${{ fromJSON(needs.stacks.outputs.matrix) }}"
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    computed = matrix(ROOT)
    assert sorted(e["stack"] for e in computed["include"] + computed["skipped"]) == stacks
    assert computed["include"], "the example stacks name a ci-deployer peer"


def test_deploy_and_preview_join_the_vpn_and_pin_the_host_key_before_pulumi():
    jobs = _workflow()["jobs"]
    for name in ("deploy", "preview"):
        steps = jobs[name]["steps"]
        join = next(i for i, s in enumerate(steps) if "join-vpn.sh" in s.get("run", ""))
        first_pulumi = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("pulumi/actions@"))
        assert join < first_pulumi
        env = jobs[name]["env"]
        assert "WG_DEPLOYER_" in env["DEPLOYER_WG_PRIVATE_KEY"] and "secrets[" in env["DEPLOYER_WG_PRIVATE_KEY"]
        assert "SSH_DEPLOYER_" in env["DEPLOYER_SSH_KEY"]
        assert env["ODOO_HOSTING_KNOWN_HOSTS_DIR"]
    script = JOIN_VPN.read_text()
    assert "tools/ci_vpn.py" in script and "wg-quick up" in script
    assert "StrictHostKeyChecking=yes" in script and "accept-new" not in script and "=no" not in script
    assert subprocess.run(["bash", "-n", str(JOIN_VPN)]).returncode == 0


def test_pull_requests_get_the_real_preview_only_when_credentials_exist():
    preview = _workflow()["jobs"]["preview"]
    assert "pull_request" in preview["if"]
    creds = next(s for s in preview["steps"] if s.get("id") == "creds")
    assert "PULUMI_ACCESS_TOKEN" in creds["run"]
    (step,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert step["with"] == {"command": "preview", "stack-name": "${{ matrix.stack }}", "policyPacks": "policies",
                            "work-dir": "."}
    assert step["if"] == "steps.creds.outputs.present == 'true'"


# -- tools/stack_matrix.py ------------------------------------------------------


def _stack(root: Path, name: str, **changes) -> None:
    data = yaml.safe_load((ROOT / "Pulumi.example-public.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data["config"].pop(f"odoo-hosting:{key}")
        else:
            data["config"][f"odoo-hosting:{key}"] = value
    (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(data))


def test_matrix_lists_each_stack_with_a_deployer_and_says_why_others_are_skipped(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: odoo-hosting\n")  # the project file is no stack
    _stack(tmp_path, "shop-a")
    vpn = yaml.safe_load((ROOT / "Pulumi.example-public.yaml").read_text())["config"]["odoo-hosting:vpn"]
    vpn["peers"] = [p for p in vpn["peers"] if p["name"] != DEPLOYER_PEER]
    _stack(tmp_path, "shop-b", vpn=vpn)
    result = matrix(tmp_path)
    assert result["include"] == [{"stack": "shop-a", "client": "acme-shop", "deployer": DEPLOYER_PEER,
                                  "secret": "SHOP_A"}]
    assert result["skipped"] == [{"stack": "shop-b", "reason": "no 'ci-deployer' entry in vpn.peers"}]


def test_matrix_refuses_a_stack_whose_settings_do_not_parse(tmp_path):
    _stack(tmp_path, "shop-a")
    _stack(tmp_path, "typo", location="ash")
    with pytest.raises(SystemExit, match="Pulumi.typo.yaml: odoo-hosting:location"):
        matrix(tmp_path)


def test_matrix_command_prints_json_for_fromjson():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "stack_matrix.py")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == matrix(ROOT)


# -- tools/ci_vpn.py -------------------------------------------------------------

OUTPUTS = {"vpnEndpoint": "203.0.113.7:51820", "vpnHostPublicKey": "HOSTPUBLICKEYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
           "vpnHostAddress": "10.66.0.1",
           "sshKnownHosts": "10.66.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"}


def _ci_vpn(tmp_path, outputs, key="cHJpdmF0ZS1rZXktZm9yLXRoZS10ZXN0LW9ubHktLS0="):
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    env = {**os.environ, "DEPLOYER_WG_PRIVATE_KEY": key, "ODOO_HOSTING_KNOWN_HOSTS_DIR": str(tmp_path / "kh")}
    return subprocess.run([sys.executable, str(ROOT / "tools" / "ci_vpn.py"), "--stack", "example-public",
                           "--outputs", str(tmp_path / "outputs.json"), "--wg-config", str(tmp_path / "wg.conf")],
                          capture_output=True, text=True, timeout=60, env=env)


def test_ci_vpn_writes_the_deployer_tunnel_and_the_pinned_known_hosts(tmp_path):
    key = "cHJpdmF0ZS1rZXktZm9yLXRoZS10ZXN0LW9ubHktLS0="
    result = _ci_vpn(tmp_path, OUTPUTS, key)
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout + result.stderr
    config = (tmp_path / "wg.conf").read_text()
    assert oct((tmp_path / "wg.conf").stat().st_mode & 0o777) == "0o600"
    assert f"PrivateKey = {key}" in config and "Address = 10.66.0.250/32" in config
    assert "Endpoint = 203.0.113.7:51820" in config and "AllowedIPs = 10.66.0.1/32" in config
    assert f"PublicKey = {OUTPUTS['vpnHostPublicKey']}" in config
    assert (tmp_path / "kh" / "acme-shop.known_hosts").read_text() == OUTPUTS["sshKnownHosts"] + "\n"


def test_ci_vpn_refuses_a_stack_not_deployed_yet_or_a_missing_secret(tmp_path):
    result = _ci_vpn(tmp_path, {k: v for k, v in OUTPUTS.items() if k != "sshKnownHosts"})
    assert result.returncode == 1 and "no sshKnownHosts output yet" in result.stderr
    assert not (tmp_path / "wg.conf").exists()
    result = _ci_vpn(tmp_path, OUTPUTS, key="")
    assert result.returncode == 1 and "DEPLOYER_WG_PRIVATE_KEY is empty" in result.stderr
