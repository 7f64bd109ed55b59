"""Measure preflight on a fleet: N copies of every example stack of a program, one run.

    .venv/bin/python bench/preflight_fleet.py [--program DIR] [--copies 40] [--policy-pack DIR] [--jobs N]
                                              [--no-fast-path] [--mock-computed]

Copies the program directory to a temporary directory (without `.venv`,
`.git` and caches), writes `Pulumi.bench-<suffix>-NN.yaml` for each
`Pulumi.example-<suffix>.yaml` (or every stack file when there is none), runs
`python -m preflight` once over all of them and prints milliseconds per stack.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "bench", "tests", "preflight")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--program", default=REPO_ROOT)
    p.add_argument("--copies", type=int, default=40)
    p.add_argument("--policy-pack", default=os.path.join(REPO_ROOT, "policies"))
    p.add_argument("--jobs", type=int, help="passed to preflight (default: its own, one worker per CPU)")
    p.add_argument("--mock-computed", action="store_true",
                   help="passed to preflight: computed outputs get mock values (as `make preflight` runs)")
    p.add_argument("--no-fast-path", action="store_true",
                   help="passed to preflight: the Pulumi SDK and the pack's library as published")
    args = p.parse_args()

    program = os.path.abspath(args.program)
    sources = sorted(glob.glob(os.path.join(program, "Pulumi.example-*.yaml"))) or sorted(
        f for f in glob.glob(os.path.join(program, "Pulumi.*.yaml")) if os.path.basename(f) != "Pulumi.yaml"
    )
    if not sources:
        print(f"no stack files in {program}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
        work = os.path.join(tmp, "program")
        shutil.copytree(program, work, ignore=IGNORE, symlinks=True)
        if os.path.isdir(os.path.join(program, ".venv")):
            # The program's Pulumi.yaml names .venv as its virtualenv: the copy runs with the same one.
            os.symlink(os.path.realpath(os.path.join(program, ".venv")), os.path.join(work, ".venv"))
        for f in glob.glob(os.path.join(work, "Pulumi.*.yaml")):
            if os.path.basename(f) != "Pulumi.yaml":
                os.remove(f)
        for src in sources:
            stack = os.path.basename(src)[len("Pulumi.") : -len(".yaml")]
            suffix = stack[len("example-") :] if stack.startswith("example-") else stack
            for i in range(args.copies):
                shutil.copyfile(src, os.path.join(work, f"Pulumi.bench-{suffix}-{i:02d}.yaml"))
        n = len(sources) * args.copies
        verdict = os.path.join(tmp, "verdict.json")
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "preflight", "--program", work, "--policy-pack", args.policy_pack,
             "--json", verdict, "--quiet", *(["--jobs", str(args.jobs)] if args.jobs else []),
             *(["--no-fast-path"] if args.no_fast_path else []),
             *(["--mock-computed"] if args.mock_computed else [])],
            cwd=REPO_ROOT, capture_output=True, text=True,
        )
        total_ms = (time.perf_counter() - start) * 1000
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # preflight, its workers and the pack: every process it started and waited for.
        cpu_ms = ((cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)) * 1000
        if proc.returncode == 2 or not os.path.exists(verdict) or proc.stderr:
            # --quiet: what preflight says on stderr is an error or a warning (e.g. "fast path off").
            print(proc.stderr[-3000:], file=sys.stderr)
        stacks = []
        if os.path.exists(verdict):
            with open(verdict) as f:
                stacks = json.load(f)["stacks"]
        errors = sum(1 for s in stacks if s["error"])
        for s in stacks:
            if s["error"]:
                print(f"stack error: {s['stack']}: {s['error']}", file=sys.stderr)
        resources = sum(s["resources"] for s in stacks)
        print(f"program: {program}" + (f", --jobs {args.jobs}" if args.jobs else "")
              + (", --no-fast-path" if args.no_fast_path else "")
              + (", --mock-computed" if args.mock_computed else ""))
        print(f"stacks: {n} ({len(sources)} stack files x {args.copies}), resources: {resources}, "
              f"stack errors: {errors}, exit code: {proc.returncode}")
        print(f"total: {total_ms:.0f} ms (process start, pack start-up, all stacks)")
        print(f"per stack: {total_ms / n:.1f} ms wall, {cpu_ms / n:.1f} ms CPU "
              f"(all processes; {os.cpu_count()} CPUs here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
