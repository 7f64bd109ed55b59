"""preflight over the real pack: the organisation stack is clean; a hand-written broken backup/Vault
program is flagged with the control ID of each broken bucket, IAM policy, Vault policy and AppRole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken_backup"


def _preflight(*args: str) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--json", "-", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_organisation_stack_is_clean_and_keeps_sec_03():
    code, report, stderr = _preflight("--program", "organisation")
    (stack,) = report["stacks"]
    assert stack["error"] is None, stderr
    assert stack["violations"] == []
    assert code == 0


def test_broken_backup_and_vault_resources_are_flagged_with_their_control_ids(tmp_path):
    # The program builds a client's backup without the ClientStack component: the pack's clientStacks
    # setting names its stack, so the backup-bucket rules (object lock, SSE-KMS...) judge it.
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({name: {"clientStacks": ["dev"]} for name in (
        "aws-s3-bucket-settings-hardened", "aws-s3-bucket-hardening-complete", "hcloud-server-backup-agent")}))
    code, report, stderr = _preflight("--program", str(BROKEN), "--policy-config", str(config))
    assert code == 1, stderr
    (stack,) = report["stacks"]
    found: dict[tuple[str, str], list[str]] = {}
    for v in stack["violations"]:
        name = v["urn"].rsplit("::", 1)[-1] if v["urn"] else "stack"
        found.setdefault((v["policy"], name), []).append(v["message"])

    def flagged(policy: str, resource: str, *controls: str) -> list[str]:
        assert (policy, resource) in found, f"{policy} on {resource} not reported: {sorted(found)}"
        reported = next(v["controls"] for v in stack["violations"] if v["policy"] == policy)
        assert set(controls) <= set(reported), reported
        return found[(policy, resource)]

    # Broken bucket: AES256, versioning suspended, a public-access flag off, force_destroy, no lock, in the US.
    # (a client's KMS key is a stack judgement: the stack shows what the bucket receives)
    messages = " ".join(flagged("aws-s3-bucket-hardening-complete", "backups-sse", "BKP-04"))
    assert "AES256" in messages
    assert flagged("aws-s3-bucket-settings-hardened", "backups-versioning", "BKP-04")
    assert "blockPublicPolicy" in " ".join(flagged("aws-s3-bucket-settings-hardened", "backups-pab", "BKP-04"))
    assert "forceDestroy" in " ".join(flagged("aws-s3-bucket-settings-hardened", "backups", "BKP-04", "REL-01"))
    assert flagged("aws-s3-bucket-hardening-complete", "backups", "BKP-04")
    assert flagged("aws-resource-eu-region", "backups", "BKP-02")
    assert flagged("aws-s3-bucket-protected", "backups", "REL-01")
    # Broken IAM policy: s3:* on *.
    messages = " ".join(flagged("aws-iam-policy-no-wildcards", "backup-user-policy", "BKP-05"))
    assert "s3:*" in messages
    # Broken Vault policy: a wildcard over every client, with sudo.
    messages = " ".join(flagged("vault-policy-client-scoped", "initech-host", "SEC-02"))
    assert "sudo" in messages and "glob" in messages
    # Broken AppRole: default TTLs, reusable secret-ids, no CIDR binding.
    messages = " ".join(flagged("vault-approle-role-bound", "initech-host-role", "SEC-02"))
    assert "secretIdNumUses" in messages and "tokenBoundCidrs" in messages
    # The stack owns a Vault mount but has no audit device nor break-glass policy.
    assert len(flagged("vault-stack-emergency-seal-and-audit", "stack", "SEC-03")) == 2
    # The host's backup agent: weekly only, password in a file, a US repository, no check, no OnFailure.
    messages = " ".join(flagged("hcloud-server-backup-agent", "web", "BKP-01", "BKP-02", "BKP-03", "INC-01"))
    assert "every 7 day(s)" in messages
    assert "password is stored on the host" in messages
    assert "us-east-1" in messages
    assert "weekly repository check" in messages
