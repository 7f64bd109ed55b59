"""preflight's fast path changes nothing but speed, and runs only where it was checked.

The fast path is preflight's replacements of Pulumi SDK internals
(``preflight.sdk_patches``) and the pack's fast servicer, which the pack
installs only when preflight offers it (``PREFLIGHT_FAST_PATH``; ``pulumi
preview`` never does). Both ways, every program of the repository (the
example stacks, the fixture programs, the corpus, and a generated 50-operator
stack) must record the same resources and get the same verdict; a version
other than the checked one, a copied SDK function that drifted, or a missing
SDK internal must select the stock path, and say so.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pulumi.runtime.settings as pulumi_settings
import pulumi.runtime.stack as pulumi_stack
import pytest
import yaml

import preflight.__main__ as cli
from preflight import engine, sdk_patches
from preflight.analyzer import FAST_PATH_ENV, PolicyPackProcess
from preflight.project import discover_stacks, load_stack
from preflight.recording import resource_view
from tests.conftest import ROOT, team_config

POLICIES = ROOT / "policies"
if str(POLICIES) not in sys.path:
    sys.path.insert(0, str(POLICIES))

from odoo_hosting_policies import _servicer  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROGRAM_FIXTURES = ("prog_main", "prog_other", "broken_backup", "broken_host")


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> list[Path]:
    """Every program directory there is: the examples, the fixtures, the corpus, and a 50-operator stack."""
    team = tmp_path_factory.mktemp("team") / "program"
    team.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "components", ".venv"):
        os.symlink(ROOT / name, team / name)
    data = yaml.safe_load((ROOT / "Pulumi.example-private.yaml").read_text())
    for key, value in team_config("example-private", 50).items():
        data["config"][f"odoo-hosting:{key}"] = value
    (team / "Pulumi.team50.yaml").write_text(yaml.safe_dump(data))
    corpus = sorted(p.parent for p in (ROOT / "tests" / "corpus").glob("*/Pulumi.yaml"))
    assert corpus, "the corpus programs moved"
    # preflight's own corpus of third-party-style constructs (transforms, invokes, unknowns...).
    constructs = sorted(p.parent for p in (Path(__file__).resolve().parent / "programs").glob("*/Pulumi.yaml"))
    assert len(constructs) >= 8, "the construct programs moved"
    return [ROOT, *(FIXTURES / name for name in PROGRAM_FIXTURES), *corpus, *constructs, team]


def _preflight(programs: list[Path], out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict, dict]:
    out.mkdir()
    verdict, resources = out / "verdict.json", out / "resources.json"
    proc = subprocess.run(
        [sys.executable, "-m", "preflight", "--quiet", "--policy-pack", str(POLICIES), "--json", str(verdict),
         "--resources", str(resources), *flags, *(a for p in programs for a in ("--program", str(p)))],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc, json.loads(verdict.read_text()), json.loads(resources.read_text())


def _canonical(verdict: dict, resources: dict) -> dict:
    """Per stack: its verdict and resources, in an order that does not depend on scheduling.

    The SDK as published calls the monitor from a thread pool, so the order in
    which resources register (and so are analyzed and reported) varies from run
    to run, with or without the fast path; what is registered and judged does not."""
    out = {}
    for stack, registered in zip(verdict["stacks"], resources["stacks"], strict=False):
        assert stack["stack"] == registered["stack"]
        out[(stack["program"], stack["stack"])] = {
            "error": stack["error"],
            "resources": sorted(registered["resources"], key=lambda r: r["urn"]),
            "violations": sorted(stack["violations"], key=lambda v: (v["urn"], v["policy"], v["message"])),
            "insecure_connections": sorted(stack["insecure_connections"], key=repr),
        }
    return out


def test_every_program_records_and_is_judged_alike_with_and_without_the_fast_path(programs, tmp_path):
    fast = _preflight(programs, tmp_path / "fast")
    stock = _preflight(programs, tmp_path / "stock", "--no-fast-path")
    for proc, _, _ in (fast, stock):
        assert "fast path off" not in proc.stderr and "fast servicer off" not in proc.stderr, proc.stderr
    assert fast[0].returncode == stock[0].returncode == 2, fast[0].stderr  # the broken fixtures
    fast_view, stock_view = _canonical(*fast[1:]), _canonical(*stock[1:])
    assert list(fast_view) == list(stock_view)
    for key, expected in stock_view.items():
        assert fast_view[key] == expected, key
    # The comparison covered recorded resources, verdicts and failures, so it could have failed on each.
    assert sum(len(s["resources"]) for s in stock_view.values()) > 300
    assert any(s["violations"] for s in stock_view.values()) and any(s["error"] for s in stock_view.values())


@pytest.fixture(scope="module")
def recorded(programs):
    """Every stack of every program that runs, recorded once."""
    out = []
    for program in programs:
        for stack in discover_stacks(str(program)):
            try:
                cfg = load_stack(str(program), stack)
            except Exception:  # noqa: BLE001 - the fixtures' broken stack files
                continue
            run = engine.run_stack(cfg)
            if run.error is None:
                out.append((cfg, run.resources))
    return out


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)


def test_the_pack_judges_alike_with_its_fast_servicer_and_with_pulumi_policy_as_published(recorded):
    analyses = {}
    for fast in (True, False):
        with PolicyPackProcess(str(POLICIES), fast=fast) as pack:
            pack.connect()
            assert _environment(pack.proc.pid).get(FAST_PATH_ENV) == ("1" if fast else None)
            assert pack.startup_notes == []
            pack.configure({})
            analyses[fast] = []
            for cfg, resources in recorded:
                pack.configure_stack(cfg.project, cfg.stack, cfg.config, cfg.secret_keys)
                analyses[fast].append((cfg.program_dir, cfg.stack, pack.analyze_stack(resources)))
    assert len(recorded) >= 18
    for fast, stock in zip(analyses[True], analyses[False], strict=False):
        assert fast == stock, fast[:2]
    assert any(a.violations for _, _, a in analyses[False])


def _served_with(monkeypatch, environ: dict) -> type:
    """The servicer class ``PolicyPack(...)`` would serve with when the pack starts in ``environ``."""
    import gc

    import pulumi_policy
    from pulumi_policy import policy as library

    served = []
    monkeypatch.setattr(library, "_PolicyAnalyzerServicer", library._PolicyAnalyzerServicer)  # undone afterwards
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **_: served.append(library._PolicyAnalyzerServicer))
    monkeypatch.setattr(gc, "freeze", lambda: None)
    monkeypatch.delenv(FAST_PATH_ENV, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    runpy.run_path(str(POLICIES / "__main__.py"), run_name="__main__")
    return served[0]


def test_the_pack_serves_with_pulumi_policy_as_published_unless_preflight_offers_the_fast_path(monkeypatch):
    stock = _servicer.FastAnalyzerServicer.__mro__[1]
    assert _served_with(monkeypatch, {}) is stock
    assert _served_with(monkeypatch, {FAST_PATH_ENV: "0"}) is stock
    assert _served_with(monkeypatch, {FAST_PATH_ENV: "1"}) is _servicer.FastAnalyzerServicer


def test_the_pack_serves_stock_and_says_so_under_another_pulumi_policy(monkeypatch, capsys):
    version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "1.99.0" if name == "pulumi-policy" else version(name))
    assert _served_with(monkeypatch, {FAST_PATH_ENV: "1"}) is _servicer.FastAnalyzerServicer.__mro__[1]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1.99.0" in err and _servicer.CHECKED_AGAINST in err, err


def test_the_pack_serves_stock_when_pulumi_policy_lacks_a_private_name_the_fast_servicer_uses(monkeypatch, capsys):
    from pulumi_policy import policy as library

    monkeypatch.delattr(library, "_NotApplicableError")
    assert _served_with(monkeypatch, {FAST_PATH_ENV: "1"}) is library._PolicyAnalyzerServicer
    assert "_NotApplicableError" in capsys.readouterr().err


def test_the_checked_versions_are_the_locked_ones():
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M))
    assert sdk_patches.CHECKED_AGAINST["pulumi"] == pins["pulumi"], "re-check preflight/sdk_patches.py"
    assert re.search(r"with Python (\d+\.\d+)", lock).group(1) == sdk_patches.CHECKED_AGAINST["python"]
    assert pins["pulumi-policy"] == _servicer.CHECKED_AGAINST, "re-check odoo_hosting_policies/_servicer.py"
    assert _servicer.FAST_PATH_ENV == FAST_PATH_ENV
    # Installed from the lock: the tests here run (and compare) the fast path itself.
    assert sdk_patches.fast_path_problem() is None


@pytest.fixture
def fresh_guard(monkeypatch):
    """``fast_path_problem`` answers afresh in the test, and afresh again after it."""
    sdk_patches.fast_path_problem.cache_clear()
    yield
    sdk_patches.fast_path_problem.cache_clear()


def _view(run) -> list[dict]:
    return sorted((resource_view(r, "[secret]") for r in run.resources), key=lambda r: r["urn"])


def test_another_pulumi_version_selects_the_stock_path_and_says_so(fresh_guard, monkeypatch, capsys):
    cfg = load_stack(str(ROOT), "example-public")
    fast_run = engine.run_stack(cfg)
    assert fast_run.fast_path
    seen = dict(sdk_patches.installed_versions(), pulumi="3.999.0")
    monkeypatch.setattr(sdk_patches, "installed_versions", lambda: seen)
    sdk_patches.fast_path_problem.cache_clear()  # the fast run asked already
    assert cli.fast_path(cli._parser().parse_args([])) is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3.999.0" in err and sdk_patches.CHECKED_AGAINST["pulumi"] in err, err

    def refuse(*_):
        raise AssertionError("a replacement of SDK internals was used")

    monkeypatch.setattr(engine, "patched_sdk", refuse)
    monkeypatch.setattr(engine, "InlineExecutor", refuse)
    stock_run = engine.run_stack(cfg)
    assert stock_run.error is None and not stock_run.fast_path
    assert _view(stock_run) == _view(fast_run)


def test_no_fast_path_runs_stock_without_a_word(capsys):
    assert cli.fast_path(cli._parser().parse_args(["--no-fast-path"])) is False
    assert capsys.readouterr().err == ""
    assert not engine.run_stack(load_stack(str(ROOT), "example-public"), fast=False).fast_path


def test_a_drifted_wait_for_rpcs_selects_the_stock_path(fresh_guard, monkeypatch):
    """The copy could stop waiting early (fewer resources recorded): it fails closed."""
    shipped = pulumi_stack.wait_for_rpcs

    async def wait_for_rpcs(await_all_outstanding_tasks=True):  # an SDK whose function changed
        await shipped(await_all_outstanding_tasks)

    monkeypatch.setattr(pulumi_stack, "wait_for_rpcs", wait_for_rpcs)
    problem = sdk_patches.fast_path_problem()
    assert problem is not None and "pulumi.runtime.stack.wait_for_rpcs" in problem, problem
    run = engine.run_stack(load_stack(str(ROOT), "example-public"))
    assert run.error is None and not run.fast_path and len(run.resources) > 60


@pytest.mark.parametrize("owner, name", [(pulumi_settings, "_get_rpc_manager"), (pulumi_settings, "SETTINGS"),
                                         (pulumi_stack, "wait_for_rpcs")])
def test_an_sdk_without_an_internal_the_fast_path_uses_selects_the_stock_path(fresh_guard, monkeypatch, owner, name):
    monkeypatch.delattr(owner, name)
    problem = sdk_patches.fast_path_problem()
    assert problem is not None and name in problem, problem
