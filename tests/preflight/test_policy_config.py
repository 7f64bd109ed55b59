"""`--policy-config`: the organisation's tuning, validated against each
policy's config schema before anything runs (a mistake names the key)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _preflight(tmp_path: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(config))
    return subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--json", "-", "--policy-config", str(path),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("config, message", [
    ({"hcloud-resource-eu-location": {"allowedLocations": "fsn1"}},
     "hcloud-resource-eu-location.allowedLocations: expected array, got 'fsn1'"),
    ({"hcloud-resource-eu-location": {"allowedLocation": ["fsn1"]}},
     "hcloud-resource-eu-location.allowedLocation: unknown setting"),
    ({"hcloud-resource-eu-location": {"allowedLocations": [1]}},
     "hcloud-resource-eu-location.allowedLocations: item 0: expected string"),
    ({"no-such-policy": "advisory"}, "unknown policy 'no-such-policy'"),
    ({"hcloud-volume-delete-protected": "sometimes"}, "bad enforcement level 'sometimes'"),
])
def test_bad_policy_config_is_an_error_naming_the_key(tmp_path, config, message):
    proc = _preflight(tmp_path, config)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tuning_applies_stricter_locations(tmp_path):
    proc = _preflight(tmp_path, {"hcloud-resource-eu-location": {"allowedLocations": ["fsn1"]}},
                      "--stack", "example-private")
    assert proc.returncode == 1, proc.stderr
    (stack,) = json.loads(proc.stdout)["stacks"]
    assert any(v["policy"] == "hcloud-resource-eu-location" and "nbg1" in v["message"] for v in stack["violations"])


def test_a_policy_can_be_made_advisory(tmp_path):
    broken = str(Path(__file__).resolve().parent / "fixtures" / "broken_host")
    levels = {name: "advisory" for name in (
        "hcloud-firewall-no-public-ingress-except-allowed", "hcloud-volume-no-provider-format",
        "hcloud-volume-delete-protected", "hcloud-resource-client-label", "hcloud-resource-eu-location",
        "hcloud-server-ssh-keys-required", "hcloud-server-sshd-key-only", "pulumi-stack-single-client",
        "hcloud-server-fail2ban-jails", "hcloud-server-unattended-upgrades", "hcloud-server-backup-agent",
        "hcloud-server-firewall-attached", "hcloud-server-vpn-only-firewalls", "hcloud-server-protection-consistent")}
    proc = _preflight(tmp_path, levels, "--program", broken)
    (stack,) = json.loads(proc.stdout)["stacks"]
    assert stack["violations"], "the findings are still reported"
    tuned = [v for v in stack["violations"] if v["policy"] in levels]
    assert tuned and all(v["enforcement"] == "advisory" for v in tuned)
    mandatory = [v for v in stack["violations"] if v["enforcement"] == "mandatory"]
    assert proc.returncode == (1 if mandatory else 0), mandatory
