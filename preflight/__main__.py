"""Command line: `python -m preflight [--program DIR] [--stack NAME] [--policy-pack DIR] ...`.

Exit codes: 0 no mandatory violation, 1 at least one, 2 error (a program or
stack failed, bad arguments or policy config, the pack did not start).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import yaml

from . import PreflightError
from .analyzer import PolicyPackProcess, parse_policy_config
from .compliance import write_report
from .mocks import Offline
from .program_imports import program_bytecode_cache
from .project import discover_stacks
from .report import StackResult, dump, exit_code, policies_json, resources_json, verdict_json, write_text
from .runner import Runner
from .sdk_patches import fast_path_problem

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m preflight",
        description="Offline `pulumi preview --policy-pack`: run Pulumi Python programs under mocks "
        "and evaluate a CrossGuard policy pack over the analyzer protocol.",
    )
    p.add_argument("--program", action="append", metavar="DIR",
                   help="program directory (repeatable; default: current directory)")
    p.add_argument("--stack", action="append", metavar="NAME",
                   help="stack name (repeatable; default: every Pulumi.<stack>.yaml of the program)")
    p.add_argument("--policy-pack", metavar="DIR", default=os.path.join(REPO_ROOT, "policies"),
                   help="policy pack directory (default: %(default)s)")
    p.add_argument("--policy-config", metavar="FILE",
                   help="policy config JSON, as for `pulumi preview --policy-pack-config`")
    p.add_argument("--json", metavar="PATH", help="write the verdict as JSON ('-' for stdout)")
    p.add_argument("--resources", metavar="PATH", help="write the recorded resources as JSON ('-' for stdout)")
    p.add_argument("--report", metavar="PATH",
                   help="write a Markdown compliance report (control -> status -> policies and resources; "
                        "'-' for stdout)")
    p.add_argument("--list-policies", action="store_true", help="list the pack's policies as JSON and exit")
    p.add_argument("-j", "--jobs", type=_jobs, metavar="N",
                   help="programs run at once, each stack in a worker process "
                        "(default: the number of CPUs; 1 runs them one by one in this process)")
    p.add_argument("--no-fast-path", action="store_true",
                   help="run the Pulumi SDK and the pack's library as published, without preflight's "
                        "replacements of their internals (slower; the verdict is the same)")
    p.add_argument("--mock-computed", action="store_true",
                   help="give computed outputs of new resources (ids, addresses, ARNs) mock values instead "
                        "of leaving them unknown as `pulumi preview` does; the output says so")
    p.add_argument("--invoke-answers", metavar="FILE",
                   help="YAML: invoke token -> its result, for data sources preflight cannot answer offline "
                        "(also overrides its own answers)")
    p.add_argument("--stack-outputs", metavar="FILE",
                   help="YAML: referenced stack name -> its outputs, for StackReference "
                        "(a secret output as {secret: VALUE})")
    p.add_argument("--allow-unexpanded", action="append", metavar="TYPE", default=[],
                   help="accept a component implemented in a provider plugin (remote=True) unexpanded: "
                        "what it creates is not judged, and the output says so (repeatable)")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="run only the K-th of N shares of the planned stacks (1 <= K <= N), for a CI matrix")
    p.add_argument("--debug", action="store_true", help="show program output and tracebacks")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    if sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")


def _load_yaml_mapping(path: str, option: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise PreflightError(f"{option} {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise PreflightError(f"{option} {path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise PreflightError(f"{option} {path}: expected a mapping of names to mappings")
    return {str(k): dict(v or {}) for k, v in data.items()}


def offline_answers(args: argparse.Namespace) -> Offline:
    """What the run answers in place of the cloud, from the command line."""
    return Offline(
        preview=not args.mock_computed,
        invoke_answers=_load_yaml_mapping(args.invoke_answers, "--invoke-answers") if args.invoke_answers else {},
        invoke_answers_file=args.invoke_answers or "",
        stack_outputs=_load_yaml_mapping(args.stack_outputs, "--stack-outputs") if args.stack_outputs else None,
        stack_outputs_file=args.stack_outputs or "",
        allow_unexpanded=frozenset(args.allow_unexpanded),
    )


def _load_policy_config(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise PreflightError(f"--policy-config {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise PreflightError(f"--policy-config {path}: invalid JSON: {e}") from None


def _plan(args) -> list[tuple[str, str]]:
    """(program dir, stack) pairs to run, in order."""
    plan = []
    for program in args.program or [os.getcwd()]:
        program = os.path.abspath(program)
        if not os.path.isfile(os.path.join(program, "Pulumi.yaml")):
            raise PreflightError(f"--program {program}: no Pulumi.yaml there")
        stacks = args.stack or discover_stacks(program)
        if not stacks:
            raise PreflightError(f"--program {program}: no Pulumi.<stack>.yaml found")
        plan.extend((program, s) for s in stacks)
    if args.shard:
        # Every K-th stack of the whole plan: shares stay even when one program has most stacks.
        k, n = args.shard
        plan = plan[k - 1 :: n]
    return plan


def fast_path(args: argparse.Namespace) -> bool:
    """Whether to run with preflight's replacements of SDK internals; says why not when they do not fit."""
    if args.no_fast_path:
        return False
    problem = fast_path_problem()
    if problem is not None:
        sys.stderr.write(f"preflight: fast path off, running the Pulumi SDK as published: {problem}\n")
        return False
    return True


def _display(program: str) -> str:
    rel = os.path.relpath(program)
    return program if rel.startswith("..") else rel


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Program modules are imported afresh for every stack (as one process per
    # `pulumi up` would); their bytecode goes to a private cache, so each is
    # compiled once per run instead of once per stack, also where the
    # environment disables bytecode files (PYTHONDONTWRITEBYTECODE).
    with tempfile.TemporaryDirectory(prefix="preflight-pycache-") as bytecode_dir:
        with program_bytecode_cache(bytecode_dir):
            return _main(args)


def _main(args: argparse.Namespace) -> int:
    to_stdout = [flag for flag, path in (("--json", args.json), ("--resources", args.resources),
                                         ("--report", args.report)) if path == "-"]
    if len(to_stdout) > 1:
        sys.stderr.write(f"preflight: error: only one output can go to stdout ('-'), not {' and '.join(to_stdout)}\n")
        return 2
    stdout_taken = bool(to_stdout)
    pack = None
    runner = None
    try:
        overrides_data = _load_policy_config(args.policy_config) if args.policy_config else None
        plan = [] if args.list_policies else _plan(args)
        fast = fast_path(args)
        offline = offline_answers(args)
        # What is imported by now (pulumi, grpc, protobuf) lives as long as the
        # process: out of the garbage collector's sight, in workers too.
        gc.collect()
        gc.freeze()
        # A stack makes some hundred thousand container objects (outputs,
        # futures, tasks), most of them garbage soon after; at the default
        # threshold (700) a young collection ran every few hundred
        # microseconds. 10,000 cuts the collector's share of a stack from
        # about 6% to 3%, for a few MB more of not yet collected garbage.
        gc.set_threshold(10_000, 10, 10)
        # Workers first: they must be forked before the pack's gRPC starts.
        runner = Runner(plan, args.jobs or os.cpu_count() or 1, fast, offline)
        # The pack guards its own fast path (its library's version), so it is offered one
        # whatever the SDK's guard said.
        pack = PolicyPackProcess(args.policy_pack, fast=not args.no_fast_path)

        def connect() -> None:
            if pack.stub is None:
                pack.connect()
                for line in pack.startup_notes:
                    sys.stderr.write(f"policy pack: {line}\n")

        with pack:
            if args.list_policies:
                connect()
                dump(policies_json(pack.policies), args.json or "-")
                return 0
            results: list[StackResult] = []
            state = {"configured": False}
            total_start = time.perf_counter()
            if overrides_data is not None:
                # A bad policy config stops the run before any program runs.
                connect()
                pack.configure(parse_policy_config(overrides_data, pack.policies, args.policy_config))
                state["configured"] = True

            def analyze(cfg, resources):
                # Connect lazily: the pack boots while the first program runs.
                started = time.perf_counter()
                connect()
                if not state["configured"]:
                    overrides = (
                        parse_policy_config(overrides_data, pack.policies, args.policy_config)
                        if overrides_data is not None else {}
                    )
                    pack.configure(overrides)
                    state["configured"] = True
                pack.configure_stack(cfg.project, cfg.stack, cfg.config, cfg.secret_keys)
                return pack.analyze_stack(resources), (time.perf_counter() - started) * 1000

            def finish(index, result, run_ms, future) -> None:
                result.elapsed_ms = run_ms
                if future is not None:
                    analysis_result, analysis_ms = future.result()
                    result.violations = analysis_result.violations
                    result.judged = analysis_result.judged
                    result.elapsed_ms += analysis_ms
                if not args.quiet:
                    status = "ERROR" if result.error else (
                        f"{len(result.resources)} resources, {len(result.violations)} violations"
                    )
                    sys.stderr.write(
                        f"[{index}/{len(plan)}] {result.stack} ... {status} ({result.elapsed_ms:.0f} ms)\n"
                    )

            # One-deep pipeline: the pack analyzes stack N (in its own process)
            # while the program of stack N+1 runs (here, or in a worker).
            with ThreadPoolExecutor(max_workers=1) as analysis:
                previous = None
                for index, program, stack, (cfg, run, error) in runner.results():
                    result = StackResult(program=_display(program), stack=stack)
                    results.append(result)
                    future = None
                    if run is None:
                        result.error = error
                    else:
                        result.resources = run.resources
                        result.unchecked = run.unexpanded
                        if args.debug and run.output:
                            sys.stderr.write(f"--- output of {stack} ---\n{run.output}")
                        if run.error:
                            result.error = f"stack {stack}: {run.error}"
                            if args.debug and run.traceback:
                                sys.stderr.write(run.traceback)
                    if previous is not None:
                        finish(*previous)
                    if result.error is None:
                        future = analysis.submit(analyze, cfg, run.resources)
                    previous = (index + 1, result, run.elapsed_ms if run else 0.0, future)
                if previous is not None:
                    finish(*previous)
            configured = state["configured"]
            if overrides_data is not None and not configured:
                # Every stack failed before analysis; still report a bad policy config.
                connect()
                parse_policy_config(overrides_data, pack.policies, args.policy_config)
            if args.debug:
                sys.stderr.write(
                    f"total {(time.perf_counter() - total_start) * 1000:.0f} ms for {len(plan)} stacks\n"
                )
                for message in pack.engine.messages:
                    sys.stderr.write(f"[pack] {message}\n")
    except grpc.RpcError as e:
        sys.stderr.write(f"preflight: error: {pack.failure(e) if pack else e}\n")
        if args.debug:
            traceback.print_exc()
        return 2
    except PreflightError as e:
        sys.stderr.write(f"preflight: error: {e}\n")
        if args.debug:
            traceback.print_exc()
        return 2
    except Exception as e:  # noqa: BLE001 - report, never dump a traceback unless asked
        sys.stderr.write(f"preflight: error: {type(e).__name__}: {e}\n")
        if args.debug:
            traceback.print_exc()
        return 2
    finally:
        if runner is not None:
            runner.close()

    if args.json:
        dump(verdict_json(results), args.json)
    if args.resources:
        dump(resources_json(results), args.resources)
    if args.report:
        write_report(results, pack.policies, args.report, pack_dir=args.policy_pack)
    # The readable summary goes to stdout unless stdout carries JSON or the report.
    text_out = sys.stderr if stdout_taken else sys.stdout
    if args.mock_computed:
        text_out.write("preflight: --mock-computed: computed outputs of new resources were given mock values, "
                       "not left unknown as `pulumi preview` leaves them\n")
    write_text(results, text_out)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
