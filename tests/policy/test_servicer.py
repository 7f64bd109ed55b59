"""The pack's analyzer servicer answers exactly as pulumi_policy's own does.

``FastAnalyzerServicer`` converts each resource once instead of once per
policy and skips policies whose ``applies_to`` excludes the type. Both
servicers get the same requests (every resource of both example stacks and
of the corpus programs, as preflight sends them, plus resources with
unknown values) under several policy configurations, and their responses
must be equal message for message: violations, their order, "not
applicable" answers with their reasons, and the unknown-value advisories.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._servicer import FastAnalyzerServicer
from preflight.analyzer import PolicyPackProcess
from preflight.engine import UNKNOWN, run_stack
from preflight.project import load_stack
from tests.policy.conftest import POLICIES_DIR

ROOT = Path(__file__).resolve().parents[2]
LibraryServicer = FastAnalyzerServicer.__mro__[1]


def _servicer(cls):
    return cls("odoo-hosting", "0.0.1", ALL_POLICIES, EnforcementLevel.MANDATORY)


def _stacks():
    programs = [(ROOT, "example-public"), (ROOT, "example-private")]
    programs += [(p.parent, p.name[len("Pulumi."):-len(".yaml")])
                 for p in sorted((ROOT / "tests" / "corpus").glob("*/Pulumi.*.yaml")) if p.name != "Pulumi.yaml"]
    out = []
    for program, stack in programs:
        cfg = load_stack(str(program), stack)
        run = run_stack(cfg)
        assert run.error is None, f"{program.name}/{stack}: {run.error}"
        out.append((cfg, run.resources))
    return out


@pytest.fixture(scope="module")
def stacks():
    return _stacks()


def _with_unknowns(resources):
    """Copies of the servers and containers with every string input unknown, as in a real preview."""
    out = []
    for record in resources:
        if record.type in ("hcloud:index/server:Server", "docker:index/container:Container"):
            record = copy.deepcopy(record)
            record.urn += "-unknown"
            record.inputs = {k: (UNKNOWN if isinstance(v, str) else v) for k, v in record.inputs.items()}
            out.append(record)
    return out


CONFIGS = {
    "defaults": {},
    "levels and settings": {
        "hcloud-resource-eu-location": {"enforcementLevel": analyzer_pb2.DISABLED},
        "hcloud-firewall-no-public-ingress-except-allowed": {"enforcementLevel": analyzer_pb2.ADVISORY, "vpnPort": 51821},
        "tls-private-key-strength": {"enforcementLevel": analyzer_pb2.REMEDIATE},
        "pulumi-stack-single-client": {"enforcementLevel": analyzer_pb2.DISABLED},
    },
}


def _configure(servicer, config: dict) -> None:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for policy in ALL_POLICIES:
        entry = request.policyConfig[policy.name]
        entry.enforcementLevel = analyzer_pb2.MANDATORY
        if policy.enforcement_level is EnforcementLevel.ADVISORY:
            entry.enforcementLevel = analyzer_pb2.ADVISORY
        settings = dict(config.get(policy.name, {}))
        if "enforcementLevel" in settings:
            entry.enforcementLevel = settings.pop("enforcementLevel")
        entry.properties.update(settings)
    servicer.Configure(request, None)


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_fast_servicer_answers_as_the_library_does(stacks, config_name):
    assert set(n.name for n in ALL_POLICIES) >= set(CONFIGS[config_name])
    fast, library = _servicer(FastAnalyzerServicer), _servicer(LibraryServicer)
    for servicer in (fast, library):
        _configure(servicer, CONFIGS[config_name])
    builder = PolicyPackProcess(str(POLICIES_DIR))
    seen = {"diagnostics": 0, "not_applicable": 0, "unknown": 0, "stack_diagnostics": 0}
    for cfg, resources in stacks:
        stack_request = analyzer_pb2.AnalyzerStackConfigureRequest(stack=cfg.stack, project=cfg.project)
        fast.ConfigureStack(stack_request, None)
        library.ConfigureStack(stack_request, None)
        per_resource, whole = builder.requests(resources + _with_unknowns(resources))
        for request in per_resource:
            expected = library.Analyze(request, None)
            assert fast.Analyze(request, None) == expected, f"{cfg.stack}: {request.urn}"
            seen["diagnostics"] += len(expected.diagnostics)
            seen["not_applicable"] += len(expected.not_applicable)
            seen["unknown"] += sum("during preview" in d.message for d in expected.diagnostics)
        expected = library.AnalyzeStack(whole, None)
        assert fast.AnalyzeStack(whole, None) == expected, cfg.stack
        seen["stack_diagnostics"] += len(expected.diagnostics)
    # The comparison covered every kind of answer, so it could have failed on each.
    assert all(seen.values()), seen


def test_reconfiguring_after_answers_changes_the_answers_as_in_the_library(stacks):
    """The fast servicer plans once per resource type; a later Configure must still take effect."""
    fast, library = _servicer(FastAnalyzerServicer), _servicer(LibraryServicer)
    cfg, resources = stacks[0]
    per_resource, _ = PolicyPackProcess(str(POLICIES_DIR)).requests(resources)
    # Not a Hetzner resource: hcloud-resource-eu-location answers "not applicable" while enabled.
    request = next(r for r in per_resource if not r.type.startswith(("hcloud:", "pulumi:")))
    skipped = []
    for config_name in ("defaults", "levels and settings", "defaults"):
        for servicer in (fast, library):
            _configure(servicer, CONFIGS[config_name])
        expected = library.Analyze(request, None)
        assert fast.Analyze(request, None) == expected, f"{config_name}: {request.type}"
        skipped.append({n.policy_name for n in expected.not_applicable})
    # The configs change this answer, so a plan kept from before Configure would have failed above.
    assert "hcloud-resource-eu-location" in skipped[0] - skipped[1]
    assert skipped[2] == skipped[0]


def test_fast_servicer_reports_the_same_policies():
    fast, library = _servicer(FastAnalyzerServicer), _servicer(LibraryServicer)
    assert fast.GetAnalyzerInfo(empty_pb2.Empty(), None) == library.GetAnalyzerInfo(empty_pb2.Empty(), None)


def test_the_pack_entry_point_installs_the_fast_servicer_before_it_serves():
    source = (POLICIES_DIR / "__main__.py").read_text()
    assert "install()" in source.split("PolicyPack(", 1)[0], "install() must run before PolicyPack(...) serves"
