"""Small third-party-style programs (tests/preflight/programs/): each construct a public Pulumi
Python program uses runs to a verdict, or to the precise error where offline cannot answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.wire import UNKNOWN

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
PACK = Path(__file__).resolve().parent / "fixtures" / "pack"


def preflight(program: str, *args: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    verdict, resources = tmp_path / "verdict.json", tmp_path / "resources.json"
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK), "--program", str(PROGRAMS / program),
         "--json", str(verdict), "--resources", str(resources), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    return proc, json.loads(verdict.read_text()), json.loads(resources.read_text())


def stack(doc: dict, name: str) -> dict:
    return next(s for s in doc["stacks"] if s["stack"] == name)


def resource(resources: dict, stack_name: str, name: str, type_prefix: str = "") -> dict:
    entry = next(s for s in resources["stacks"] if s["stack"] == stack_name)
    return next(r for r in entry["resources"] if r["name"] == name and r["type"].startswith(type_prefix))


# -- preview semantics --------------------------------------------------------------------------


def test_computed_outputs_are_unknown_and_the_program_runs_its_preview_path(tmp_path):
    proc, verdict, resources = preflight("preview_unknowns", "--stack", "dev", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dev = stack(verdict, "dev")
    assert dev["error"] is None and dev["violations"] == []
    names = {r["name"] for r in next(s for s in resources["stacks"])["resources"]}
    assert "deploy-only" not in names  # is_dry_run() was true
    firewall = resource(resources, "dev", "admin-ssh")["inputs"]
    assert firewall["applyTos"] == [{"server": UNKNOWN}]  # the server's id, unknown at preview
    assert firewall["rules"][0]["sourceIps"] == ["192.0.2.10/32"]


def test_a_mandatory_policy_reading_an_unknown_is_not_judged_and_never_a_pass(tmp_path):
    proc, verdict, _ = preflight("preview_unknowns", "--stack", "computed", tmp_path=tmp_path)
    [violation] = stack(verdict, "computed")["violations"]
    assert violation["policy"] == "hcloud-firewall-no-public-ssh"
    assert violation["not_judged"] is True and violation["enforcement"] == "mandatory"
    assert ".rules.0.sourceIps.0 can't be known during preview" in violation["message"]
    assert proc.returncode == 1
    assert "preflight: INCOMPLETE:" in proc.stdout and "MANDATORY NOT JUDGED" in proc.stdout


def test_mock_computed_judges_the_mock_value_instead(tmp_path):
    proc, verdict, resources = preflight("preview_unknowns", "--stack", "computed", "--mock-computed",
                                         tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stack(verdict, "computed")["violations"] == []
    assert resource(resources, "computed", "admin-ssh")["inputs"]["rules"][0]["sourceIps"][0].endswith("/32")
    assert "--mock-computed: computed outputs of new resources were given mock values" in proc.stdout
    # Still a preview: the program's deploy path (is_dry_run() false) is not taken.
    names = {r["name"] for r in next(s for s in resources["stacks"])["resources"]}
    assert "deploy-only" not in names


# -- components implemented in a provider plugin ------------------------------------------------


def test_a_remote_component_makes_the_stack_an_error_naming_its_type(tmp_path):
    proc, verdict, _ = preflight("remote_component", tmp_path=tmp_path)
    error = stack(verdict, "dev")["error"]
    assert error.startswith("stack dev: awsx:ec2:Vpc 'main' is a component implemented in a provider plugin")
    assert "--allow-unexpanded awsx:ec2:Vpc" in error
    assert proc.returncode == 2


def test_an_accepted_remote_component_is_reported_unchecked(tmp_path):
    report = tmp_path / "report.md"
    proc, verdict, _ = preflight("remote_component", "--allow-unexpanded", "awsx:ec2:Vpc", "--report", str(report),
                                 tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stack(verdict, "dev")["unchecked"] == ["awsx:ec2:Vpc main"]
    assert "UNCHECKED awsx:ec2:Vpc main" in proc.stdout
    assert "preflight: PASS WITH 1 UNCHECKED COMPONENTS:" in proc.stdout
    assert "## `dev`: PASS, components unchecked" in report.read_text()
    assert "`awsx:ec2:Vpc main`" in report.read_text()


def test_accepting_another_type_does_not_accept_this_one(tmp_path):
    proc, verdict, _ = preflight("remote_component", "--allow-unexpanded", "awsx:ec2:DefaultVpc", tmp_path=tmp_path)
    assert "awsx:ec2:Vpc 'main'" in stack(verdict, "dev")["error"]
    assert proc.returncode == 2


# -- invokes -------------------------------------------------------------------------------------


def test_policy_document_is_computed_as_the_provider_renders_it(tmp_path):
    proc, verdict, resources = preflight("invokes", "--stack", "dev", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stack(verdict, "dev")["violations"] == []
    policy = json.loads(resource(resources, "dev", "logs-read")["inputs"]["policy"])
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadLogs", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
             "Resource": ["arn:aws:s3:::logs/*", "arn:aws:s3:::logs"],
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*", "Principal": {"AWS": "*"}},
        ],
    }


def test_common_lookups_get_realistic_answers(tmp_path):
    _proc, _verdict, resources = preflight("invokes", "--stack", "dev", tmp_path=tmp_path)
    bastion = resource(resources, "dev", "bastion")["inputs"]
    assert bastion["availabilityZone"] == "eu-west-1a"
    assert bastion["ami"].startswith("ami-0") and len(bastion["ami"]) == 21
    server = resource(resources, "dev", "web", "hcloud:")["inputs"]
    assert server["location"] == "nbg1" and server["serverType"] == "cx22" and server["image"] == "debian-12"
    assert server["sshKeys"][0].isdigit()


def assert_stack_error(program: str, stack_name: str, expected: str, tmp_path: Path, *flags: str) -> None:
    proc, verdict, _ = preflight(program, "--stack", stack_name, *flags, tmp_path=tmp_path)
    assert stack(verdict, stack_name)["error"] == expected
    assert proc.returncode == 2


def test_an_invoke_with_no_answer_is_an_error_naming_token_and_flag(tmp_path):
    assert_stack_error("invokes", "vpc", "stack vpc: invoke aws:ec2/getVpc:getVpc has no offline answer: "
                       "answer it with --invoke-answers FILE (YAML: the token, then the result's fields)", tmp_path)


def test_invoke_answers_file_answers_it(tmp_path):
    answers = PROGRAMS / "invokes" / "answers.yaml"
    proc, verdict, resources = preflight("invokes", "--stack", "vpc", "--invoke-answers", str(answers),
                                         tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    group = resource(resources, "vpc", "web", "aws:ec2/securityGroup")["inputs"]
    assert group["vpcId"] == "vpc-0preflight0000001" and group["description"] == "in 172.31.0.0/16"


# -- stack references ----------------------------------------------------------------------------


def test_stack_reference_without_outputs_file_names_stack_and_flag(tmp_path):
    assert_stack_error("stack_reference", "dev", "stack dev: StackReference 'acme/network/prod': its outputs are "
                       "not known offline: give them with --stack-outputs FILE (YAML: stack name, then its outputs)",
                       tmp_path)


def test_stack_reference_outputs_come_from_the_file_secrets_stay_secret(tmp_path):
    outputs = PROGRAMS / "stack_reference" / "outputs.yaml"
    proc, verdict, resources = preflight("stack_reference", "--stack-outputs", str(outputs), tmp_path=tmp_path)
    assert stack(verdict, "dev")["error"] is None
    assert resource(resources, "dev", "ssh")["inputs"]["rules"][0]["sourceIps"] == ["192.0.2.0/24"]
    assert resource(resources, "dev", "extra")["inputs"]["labels"] == {"token": "[secret]"}
    assert "PREFLIGHT-SECRET" not in json.dumps(resources)
    # The other stack reads an output the file does not have.
    assert stack(verdict, "missing")["error"] == (
        f"stack missing: StackReference 'acme/network/prod': output 'adminCidr' is not in {outputs}")
    assert proc.returncode == 2


@pytest.mark.parametrize("content, expected", [
    ("[1, 2]", "expected a mapping of names to mappings"),
    ("a: [", "invalid YAML"),
])
def test_bad_answers_files_exit_2_naming_the_option(tmp_path, content, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK),
                           "--program", str(PROGRAMS / "invokes"), "--invoke-answers", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"preflight: error: --invoke-answers {bad}: {expected}" in proc.stderr


# -- transforms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--no-fast-path",)], ids=["fast-path", "sdk-as-published"])
def test_transforms_of_both_apis_are_applied_as_the_engine_applies_them(tmp_path, flags):
    proc, verdict, resources = preflight("transforms", *flags, tmp_path=tmp_path)
    # The resource's own transform opened SSH to the world: the pack saw the transformed rule.
    [violation] = stack(verdict, "dev")["violations"]
    assert violation["policy"] == "hcloud-firewall-no-public-ssh" and not violation["not_judged"]
    assert proc.returncode == 1
    firewall = resource(resources, "dev", "ssh")
    assert firewall["inputs"]["rules"][0]["sourceIps"] == ["0.0.0.0/0"]
    # The stack transform (registered with register_resource_transform) ran after it.
    assert firewall["inputs"]["labels"] == {"managed-by": "transforms"}
    volume = resource(resources, "dev", "data")
    assert volume["options"]["protect"] is True and volume["inputs"]["labels"] == {"managed-by": "transforms"}
    # A component's transform reached its child, and the stack's after it.
    assert resource(resources, "dev", "backend-net")["inputs"]["labels"] == {"tier": "backend",
                                                                              "managed-by": "transforms"}
    # The stack's invoke transforms rewrote the invoke before it was answered, in their order
    # (both the plain and the output form of an invoke); one that returns None changes nothing.
    server = resource(resources, "dev", "web")["inputs"]
    assert server["image"] == "debian-13-arm" and server["location"] == "nbg1"


# -- secret and object config ----------------------------------------------------------------------


def test_every_typed_getter_works_on_secret_placeholders_and_keeps_them_secret(tmp_path):
    proc, verdict, resources = preflight("secret_config", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stack(verdict, "dev")["error"] is None
    volume = resource(resources, "dev", "data")["inputs"]
    assert volume["size"] == 10
    assert volume["labels"] == {k: "[secret]" for k in
                                ("db-user", "smtp-host", "smtp-password", "replicas", "debug", "ratio")}
    assert "PREFLIGHT-SECRET" not in json.dumps(resources)


# -- fleets ---------------------------------------------------------------------------------------


def _fleet_run(tmp_path: Path, *args: str) -> tuple[int, list[dict]]:
    verdict = tmp_path / f"verdict{'-'.join(a.replace('/', 'of') for a in args)}.json"
    programs = [arg for p in ("preview_unknowns", "invokes", "secret_config", "transforms")
                for arg in ("--program", str(PROGRAMS / p))]
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK), *programs,
                           "--json", str(verdict), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(verdict.read_text())["stacks"]


def test_the_union_of_shards_is_the_whole_run(tmp_path):
    whole_code, whole = _fleet_run(tmp_path)
    assert len(whole) == 6
    shards = [_fleet_run(tmp_path, "--shard", f"{k}/4") for k in (1, 2, 3, 4)]
    union = [s for _code, stacks in shards for s in stacks]
    key = lambda s: (s["program"], s["stack"])  # noqa: E731
    assert sorted(union, key=key) == sorted(whole, key=key)
    assert all(stacks for _code, stacks in shards)  # no empty share
    assert max(code for code, _ in shards) == whole_code


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1-3", "x/y"])
def test_a_bad_shard_exits_2(bad):
    proc = subprocess.run([sys.executable, "-m", "preflight", "--shard", bad], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--shard" in proc.stderr and "K/N" in proc.stderr


# -- the program's own runtime --------------------------------------------------------------------


def _make_virtualenv(path: Path) -> None:
    """A virtualenv with a package of its own; the installed SDKs come from this one through a .pth."""
    import site
    import sysconfig

    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(path)],
                   check=True, timeout=120)
    purelib = Path(subprocess.run([str(path / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "preflight-test-sdks.pth").write_text(
        "\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]) + "\n")
    (purelib / "only_in_this_venv.py").write_text('ROLE = "from-the-programs-venv"\n')


def test_the_program_runs_with_its_own_virtualenv(tmp_path):
    program = tmp_path / "own_virtualenv"
    program.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        (program / name).write_text((PROGRAMS / "own_virtualenv" / name).read_text())
    _make_virtualenv(program / "venv")
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK),
                           "--program", str(program), "--resources", "-"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    net = next(r for r in json.loads(proc.stdout)["stacks"][0]["resources"] if r["name"] == "net")
    assert net["inputs"]["labels"] == {"role": "from-the-programs-venv", "prefix": "venv"}


def _poetry_program(tmp_path: Path, poetry_script: str | None) -> tuple[Path, dict[str, str]]:
    """The own_virtualenv program with toolchain poetry and no virtualenv named, and a PATH whose
    `poetry` is a stand-in running ``poetry_script`` (None: no poetry on PATH at all)."""
    program = tmp_path / "poetry_program"
    program.mkdir()
    for name in ("Pulumi.dev.yaml", "__main__.py"):
        (program / name).write_text((PROGRAMS / "own_virtualenv" / name).read_text())
    (program / "Pulumi.yaml").write_text("name: own-virtualenv\nruntime:\n  name: python\n  options:\n"
                                         "    toolchain: poetry\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # Only what preflight itself needs beside the stand-in: the interpreter that runs it.
    (bindir / "python3").symlink_to(sys.executable)
    if poetry_script is not None:
        (bindir / "poetry").write_text("#!/bin/sh\n" + poetry_script)
        (bindir / "poetry").chmod(0o755)
    return program, dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin" if poetry_script is not None else str(bindir))


def test_a_poetry_program_runs_in_the_environment_poetry_names(tmp_path):
    # Stand-in for poetry's CLI: what the language host asks (`poetry env info --path`, in the
    # program's directory) answered with the path of an environment made here. It cannot show that
    # a real poetry answers so; the language host's source (toolchain/poetry.go) asks exactly this.
    venv = tmp_path / "cache" / "pypoetry" / "virtualenvs" / "own-virtualenv-x1-py3.11"
    _make_virtualenv(venv)
    asked = tmp_path / "asked"
    program, env = _poetry_program(tmp_path, f'echo "$PWD $*" >> {asked}\necho {venv}\n')
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK),
                           "--program", str(program), "--resources", "-"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    net = next(r for r in json.loads(proc.stdout)["stacks"][0]["resources"] if r["name"] == "net")
    assert net["inputs"]["labels"] == {"role": "from-the-programs-venv", "prefix": venv.name}
    assert asked.read_text() == f"{program} env info --path\n"  # asked once, in the program's directory


@pytest.mark.parametrize("script, expected", [
    (None, "`poetry` is not on PATH: install it and `poetry install` the program, or name its environment "
           "with runtime.options.virtualenv"),
    ('echo "The virtual environment was not found" >&2\nexit 1\n',
     "`poetry env info --path` gave no environment for {program} (The virtual environment was not found): "
     "run `poetry install` there"),
], ids=["no-poetry", "no-environment"])
def test_a_poetry_program_without_its_environment_is_a_clear_error(tmp_path, script, expected):
    program, env = _poetry_program(tmp_path, script)
    proc = subprocess.run([sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(PACK),
                           "--program", str(program), "--json", "-"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["stacks"][0]["error"]
    assert error.endswith("Pulumi.yaml: runtime toolchain poetry" + (", but " if script is None else ": ")
                          + expected.format(program=program)), error


def test_a_missing_virtualenv_is_a_clear_error(tmp_path):
    proc, verdict, _ = preflight("own_virtualenv", tmp_path=tmp_path)
    venv = PROGRAMS / "own_virtualenv" / "venv"
    assert stack(verdict, "dev")["error"] == (
        f"stack dev: the program's virtualenv {venv} (Pulumi.yaml runtime.options) has no bin/python: create it, "
        f"e.g. python3 -m venv {venv} && {venv}/bin/python -m pip install -r requirements.txt")
    assert proc.returncode == 2


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--no-fast-path",)], ids=["fast-path", "sdk-as-published"])
def test_an_error_in_an_apply_names_the_programs_file_and_line(tmp_path, flags):
    # Every output built on the failing apply fails with its exception; the place named must not
    # depend on which of them a set yields first (it did: the order follows memory addresses).
    assert_stack_error("apply_error", "dev",
                       'stack dev: naming.py:2: TypeError: can only concatenate str (not "int") to str', tmp_path,
                       *flags)
