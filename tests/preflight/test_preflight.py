"""Tests of the preflight harness, against its own fixture programs and pack.

Most tests run `python -m preflight` as a subprocess, as users do. One
module-scoped run covers several programs and stacks in one process; the
shape and content checks read its JSON files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from preflight.project import load_stack
from preflight.wire import UNKNOWN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MAIN = os.path.join(FIXTURES, "prog_main")
OTHER = os.path.join(FIXTURES, "prog_other")
PACK = os.path.join(FIXTURES, "pack")


def preflight(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "preflight", "--policy-pack", PACK, "--quiet", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """One run over two programs and three stacks: verdict and resources JSON."""
    out = tmp_path_factory.mktemp("fleet")
    verdict, resources = out / "verdict.json", out / "resources.json"
    proc = preflight(
        "--program", MAIN, "--program", OTHER, "--stack", "clean", "--stack", "open-ssh", "--stack", "calm",
        "--json", str(verdict), "--resources", str(resources),
    )
    # prog_main has no "calm" stack and prog_other no "clean"/"open-ssh": those are stack errors.
    return proc, json.loads(verdict.read_text()), json.loads(resources.read_text())


def _stack(doc, program_suffix, stack):
    return next(s for s in doc["stacks"] if s["stack"] == stack and s.get("program", "").endswith(program_suffix))


def _resources(resources_doc, stack, program_suffix="prog_main", verdict_doc=None):
    # The resources document lists stacks in the verdict's order; the verdict names the program.
    for entry, verdict_entry in zip(resources_doc["stacks"], verdict_doc["stacks"], strict=False):
        if entry["stack"] == stack and verdict_entry["program"].endswith(program_suffix):
            return entry["resources"]
    raise AssertionError(f"no stack {stack} of {program_suffix}")


def _by_name(resources, name):
    return next(r for r in resources if r["name"] == name)


# -- JSON shapes -----------------------------------------------------------


def test_verdict_json_has_exact_shape(fleet):
    _, verdict, _ = fleet
    assert set(verdict) == {"stacks"}
    for s in verdict["stacks"]:
        assert set(s) == {"program", "stack", "resources", "error", "violations", "insecure_connections", "unchecked"}
        assert isinstance(s["insecure_connections"], list)
        assert isinstance(s["resources"], int)
        for v in s["violations"]:
            assert set(v) == {"policy", "controls", "enforcement", "urn", "message", "not_judged"}
            assert v["enforcement"] in ("mandatory", "advisory")
            assert isinstance(v["controls"], list)


def test_resources_json_has_exact_shape(fleet):
    _, _, resources = fleet
    for s in resources["stacks"]:
        assert set(s) == {"stack", "resources"}
        for r in s["resources"]:
            assert set(r) == {"type", "name", "urn", "parent", "inputs", "options"}


def test_violations_carry_policy_controls_and_message(fleet):
    _, verdict, _ = fleet
    open_ssh = _stack(verdict, "prog_main", "open-ssh")
    assert open_ssh["error"] is None
    by_policy = {v["policy"]: v for v in open_ssh["violations"]}
    ssh = by_policy["hcloud-firewall-no-public-ssh"]
    assert ssh == {
        "policy": "hcloud-firewall-no-public-ssh",
        "controls": ["ACC-02"],
        "enforcement": "mandatory",
        "urn": "urn:pulumi:open-ssh::fixture::hcloud:index/firewall:Firewall::fw",
        "message": ssh["message"],
        "not_judged": False,
    }
    assert "Port 22 is open" in ssh["message"]
    assert by_policy["random-password-min-length"]["controls"] == ["SEC-01", "BKP-03"]
    assert by_policy["random-password-min-length"]["enforcement"] == "advisory"
    assert _stack(verdict, "prog_main", "clean")["violations"] == []


def test_one_run_covers_several_programs_and_reports_missing_stacks_as_errors(fleet):
    proc, verdict, _ = fleet
    assert proc.returncode == 2
    assert _stack(verdict, "prog_other", "calm")["error"] is None
    # prog_other imports its own `components` package, after prog_main imported one.
    assert _stack(verdict, "prog_other", "calm")["resources"] == 5
    missing = _stack(verdict, "prog_main", "calm")
    assert "Pulumi.calm.yaml not found" in missing["error"]
    assert "Traceback" not in proc.stderr


# -- URNs, options, providers ---------------------------------------------


def test_urns_follow_engine_form_with_component_chain(fleet):
    _, verdict, resources = fleet
    res = _resources(resources, "clean", verdict_doc=verdict)
    base = "urn:pulumi:clean::fixture::"
    assert _by_name(res, "fw")["urn"] == base + "hcloud:index/firewall:Firewall::fw"
    assert _by_name(res, "app")["urn"] == base + "fixture:index:Group::app"
    host = _by_name(res, "app-host")
    assert host["urn"] == base + "fixture:index:Group$fixture:index:Host::app-host"
    server = _by_name(res, "app-host-server")
    assert server["urn"] == base + "fixture:index:Group$fixture:index:Host$hcloud:index/server:Server::app-host-server"
    assert server["parent"] == host["urn"]
    assert _by_name(res, "fixture-clean")["type"] == "pulumi:pulumi:Stack"
    assert _by_name(res, "fw")["parent"] == base + "pulumi:pulumi:Stack::fixture-clean"


def test_resource_options_are_recorded(fleet):
    _, verdict, resources = fleet
    res = _resources(resources, "clean", verdict_doc=verdict)
    server = _by_name(res, "app-host-server")["options"]
    assert server["ignoreChanges"] == ["userData", "sshKeys"]
    assert server["deleteBeforeReplace"] is True and server["deleteBeforeReplaceDefined"] is True
    assert server["protect"] is False
    volume = _by_name(res, "app-host-data")["options"]
    assert volume["protect"] is True and volume["retainOnDelete"] is True
    assert volume["deleteBeforeReplaceDefined"] is False


def test_inputs_use_wire_names_and_computed_ids_are_unknown_at_preview(fleet):
    _, verdict, resources = fleet
    res = _resources(resources, "clean", verdict_doc=verdict)
    server = _by_name(res, "app-host-server")["inputs"]
    assert server["serverType"] == "cx33"
    # The firewall is being created: its id is unknown at preview, as the engine hands it on.
    assert server["firewallIds"] == [UNKNOWN]
    assert _by_name(res, "fw")["inputs"]["rules"][0]["sourceIps"] == ["0.0.0.0/0", "::/0"]


def test_mock_computed_gives_ids_and_secret_outputs_mock_values(tmp_path):
    out = tmp_path / "resources.json"
    proc = preflight("--program", MAIN, "--stack", "clean", "--mock-computed", "--resources", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--mock-computed: computed outputs of new resources were given mock values" in proc.stdout
    res = json.loads(out.read_text())["stacks"][0]["resources"]
    server = _by_name(res, "app-host-server")["inputs"]
    # The firewall id came back from the mock as a numeric hcloud id.
    assert isinstance(server["firewallIds"][0], int)
    assert server["labels"]["result-probe"] == "yes"  # additionalSecretOutputs got a placeholder


def test_default_provider_is_synthesized_with_stack_config(fleet):
    _, verdict, resources = fleet
    res = _resources(resources, "clean", verdict_doc=verdict)
    providers = [r for r in res if r["type"] == "pulumi:providers:hcloud"]
    assert len(providers) == 1
    provider = providers[0]
    assert provider["name"].startswith("default")
    assert provider["urn"] == f"urn:pulumi:clean::fixture::pulumi:providers:hcloud::{provider['name']}"
    assert provider["inputs"]["token"] == "[secret]"
    assert _by_name(res, "fw")["options"]["provider"].startswith(provider["urn"] + "::")
    # The pack's provider-token policy saw args.provider (no violation).
    assert not [v for v in _stack(verdict, "prog_main", "clean")["violations"] if v["policy"] == "hcloud-provider-has-token"]
    # Object-valued provider config keeps its structure.
    calm = _resources(resources, "calm", "prog_other", verdict_doc=verdict)
    tls_provider = next(r for r in calm if r["type"] == "pulumi:providers:tls")
    assert tls_provider["inputs"]["proxy"] == {"url": "http://proxy.example"}


def test_explicit_provider_is_resolved_from_the_provider_reference(fleet):
    _, verdict, resources = fleet
    calm = _resources(resources, "calm", "prog_other", verdict_doc=verdict)
    provider = _by_name(calm, "no-token")
    assert provider["type"] == "pulumi:providers:hcloud"
    assert provider["urn"] == "urn:pulumi:calm::other::pulumi:providers:hcloud::no-token"
    network = _by_name(calm, "other-net")
    assert network["options"]["provider"].startswith(provider["urn"] + "::")
    assert not [r for r in calm if r["type"] == "pulumi:providers:hcloud" and r["name"].startswith("default")]
    # The pack saw the explicit provider as args.provider.
    [violation] = _stack(verdict, "prog_other", "calm")["violations"]
    assert violation["policy"] == "hcloud-provider-has-token"
    assert violation["enforcement"] == "advisory" and violation["controls"] == []
    assert "Provider no-token" in violation["message"]
    assert violation["urn"] == network["urn"]


# -- secrets ---------------------------------------------------------------


def test_secrets_are_masked_and_placeholders_reach_the_program(fleet):
    _, verdict, resources = fleet
    res = _resources(resources, "clean", verdict_doc=verdict)
    password = _by_name(res, "db-password")
    assert password["inputs"]["keepers"] == {"db": "[secret]"}
    labels = _by_name(res, "app-host-server")["inputs"]["labels"]
    assert labels["config-probe"] == "yes"  # secure: config value is a placeholder
    assert labels["result-probe"] == UNKNOWN  # a generated password is unknown at preview
    assert labels["team"] == "ops"  # object config arrives JSON-encoded


def test_no_placeholder_leaks_into_resources_json(fleet):
    _, _, resources = fleet
    assert "PREFLIGHT-SECRET" not in json.dumps(resources)


# -- exit codes ------------------------------------------------------------


def test_clean_stack_exits_0_and_program_prints_stay_out_of_stdout():
    proc = preflight("--program", MAIN, "--stack", "clean")
    assert proc.returncode == 0, proc.stderr
    assert "fixture program says hello" not in proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    debug = preflight("--program", MAIN, "--stack", "clean", "--debug")
    assert debug.returncode == 0 and "fixture program says hello" in debug.stderr


def test_violating_stack_exits_1():
    proc = preflight("--program", MAIN, "--stack", "open-ssh")
    assert proc.returncode == 1, proc.stderr
    assert "hcloud-firewall-no-public-ssh" in proc.stdout and "ACC-02" in proc.stdout


def test_program_raising_run_error_exits_2_with_its_message_and_place_only():
    proc = preflight("--program", OTHER, "--stack", "solo", "--json", "-")
    assert proc.returncode == 2
    stack = json.loads(proc.stdout)["stacks"][0]
    # Stack, the program's file:line (relative to the program), the cause: one line.
    assert stack["error"] == "stack solo: app/__main__.py:11: other:mode is `raise`; set it to `calm`"
    assert "Traceback" not in proc.stderr


def test_debug_adds_the_traceback():
    proc = preflight("--program", OTHER, "--stack", "solo", "--debug")
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr and 'app/__main__.py", line 11' in proc.stderr


def test_bad_stack_config_exits_2_naming_the_stack_and_key():
    proc = preflight("--program", MAIN, "--stack", "broken", "--stack", "badyaml", "--stack", "clean", "--json", "-")
    assert proc.returncode == 2
    stacks = {s["stack"]: s for s in json.loads(proc.stdout)["stacks"]}
    assert "fixture:passwordLength" in stacks["broken"]["error"]
    assert "invalid YAML" in stacks["badyaml"]["error"]
    assert stacks["clean"]["error"] is None and stacks["clean"]["resources"] > 0
    assert "Traceback" not in proc.stderr


def test_bad_arguments_exit_2():
    assert preflight("--no-such-flag").returncode == 2
    proc = preflight("--program", os.path.join(FIXTURES, "missing"))
    assert proc.returncode == 2 and "no Pulumi.yaml" in proc.stderr


def test_bad_jobs_exit_2_naming_the_option():
    for value in ("0", "-1", "two"):
        proc = preflight("--program", MAIN, "--stack", "clean", "--jobs", value)
        assert proc.returncode == 2 and "--jobs" in proc.stderr and value in proc.stderr


def test_worker_processes_give_the_same_verdict_and_resources_as_one_process(fleet, tmp_path):
    _, parallel_verdict, parallel_resources = fleet  # default: one worker per CPU
    verdict, resources = tmp_path / "verdict.json", tmp_path / "resources.json"
    preflight("--program", MAIN, "--program", OTHER, "--stack", "clean", "--stack", "open-ssh", "--stack", "calm",
              "--json", str(verdict), "--resources", str(resources), "--jobs", "1")
    assert json.loads(verdict.read_text()) == parallel_verdict
    assert json.loads(resources.read_text()) == parallel_resources
    # And with more workers than stacks (three workers for five planned stacks here, two of them errors).
    preflight("--program", MAIN, "--program", OTHER, "--stack", "clean", "--stack", "open-ssh", "--stack", "calm",
              "--json", str(verdict), "--jobs", "3")
    assert json.loads(verdict.read_text()) == parallel_verdict


def test_a_program_that_kills_its_process_fails_only_its_own_stack(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: exits\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(
        "import os\nimport pulumi\n"
        "if pulumi.get_stack() == 'dies':\n    os._exit(7)\n"
        "pulumi.export('ok', True)\n")
    for stack in ("before", "dies", "after"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", "--policy-pack", PACK, "--quiet", "--json", "-", "--program", str(tmp_path),
         "--stack", "before", "--stack", "dies", "--stack", "after", "--jobs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    stacks = {s["stack"]: s for s in json.loads(proc.stdout)["stacks"]}
    assert stacks["before"]["error"] is None and stacks["after"]["error"] is None
    assert "exited with code 7" in stacks["dies"]["error"]


@pytest.mark.parametrize(
    "config, expected",
    [({"no-such-policy": "advisory"}, "no-such-policy"), ({"random-password-min-length": "strict"}, "strict")],
)
def test_bad_policy_config_exits_2_naming_the_key(tmp_path, config, expected):
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(config))
    proc = preflight("--program", MAIN, "--stack", "clean", "--policy-config", str(path))
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_policy_config_changes_enforcement(tmp_path):
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({
        "hcloud-firewall-no-public-ssh": "disabled",
        "random-password-min-length": {"enforcementLevel": "mandatory"},
    }))
    proc = preflight("--program", MAIN, "--stack", "open-ssh", "--policy-config", str(path), "--json", "-")
    assert proc.returncode == 1
    violations = json.loads(proc.stdout)["stacks"][0]["violations"]
    assert [(v["policy"], v["enforcement"]) for v in violations] == [("random-password-min-length", "mandatory")]


def test_pack_that_fails_to_start_exits_2_with_its_stderr():
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", "--program", MAIN, "--stack", "clean", "--policy-pack", OTHER, "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "policy pack" in proc.stderr and "__main__" in proc.stderr


# -- listing ---------------------------------------------------------------


def test_list_policies():
    proc = preflight("--list-policies")
    assert proc.returncode == 0, proc.stderr
    policies = {p["name"]: p for p in json.loads(proc.stdout)["policies"]}
    assert policies["hcloud-firewall-no-public-ssh"] == {
        "name": "hcloud-firewall-no-public-ssh",
        "description": "Checks that no firewall opens SSH to the internet.",
        "enforcement": "mandatory",
        "controls": ["ACC-02"],
    }
    assert policies["hcloud-provider-has-token"]["controls"] == []
    assert policies["stack-servers-have-firewall"]["controls"] == ["ACC-02"]


# -- stack config (in-process, no subprocess needed) -----------------------


def test_stack_config_applies_schema_defaults_namespaces_and_secrets():
    cfg = load_stack(MAIN, "clean")
    assert cfg.project == "fixture"
    assert cfg.config["fixture:openSsh"] == "false"  # unnamespaced schema key, boolean default
    assert cfg.config["fixture:passwordLength"] == "40"
    assert cfg.config["fixture:withFirewall"] == "true"  # `value:` form
    assert cfg.config["fixture:location"] == "fsn1"  # unnamespaced stack key
    assert json.loads(cfg.config["fixture:tags"]) == {"team": "ops", "tier": 1}
    assert "PREFLIGHT-SECRET" in cfg.config["hcloud:token"]
    assert cfg.secret_keys == ["fixture:dbPassword", "hcloud:token"]
    assert cfg.main == os.path.join(MAIN, "__main__.py")
    assert load_stack(OTHER, "calm").main == os.path.join(OTHER, "app", "__main__.py")


def test_report_dash_writes_the_markdown_report_to_stdout_and_the_summary_to_stderr(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", "--policy-pack", PACK, "--program", MAIN, "--stack", "open-ssh",
         "--report", "-"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("# "), proc.stdout[:200]
    assert "hcloud-firewall-no-public-ssh" in proc.stdout
    # The readable summary moves to stderr, and no file named "-" is left behind.
    assert "open-ssh" in proc.stderr and "FAIL" in proc.stderr
    assert not (tmp_path / "-").exists()


def test_two_outputs_to_stdout_are_refused_before_any_run():
    proc = preflight("--program", MAIN, "--stack", "clean", "--json", "-", "--report", "-")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "only one output can go to stdout" in proc.stderr and "--json and --report" in proc.stderr
