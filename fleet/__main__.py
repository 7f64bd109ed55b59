"""python -m fleet preview|up [--stacks a,b,...] [--parallel N] [--canary K] [--summary PREFIX]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .rollout import ROOT, AutomationRunner, Command, StackRunner, roll_out


def all_stacks(root: Path = ROOT) -> list[str]:
    """Every ``Pulumi.<stack>.yaml`` of the repository, in name order."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def main(argv: list[str] | None = None, runner: StackRunner | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet", description=__doc__)
    parser.add_argument("command", choices=["preview", "up"])
    parser.add_argument("--stacks", help="comma-separated, in roll-out order (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--parallel", type=int, default=2, help="stacks at a time after the canaries (default 2)")
    parser.add_argument("--canary", type=int, default=1, help="the first K stacks go first, one at a time")
    parser.add_argument("--summary", type=Path, default=Path("fleet-summary"),
                        help="writes PREFIX.json and PREFIX.md (default fleet-summary)")
    args = parser.parse_args(argv)
    stacks = [s for s in (args.stacks.split(",") if args.stacks else all_stacks()) if s]
    unknown = [s for s in stacks if not (ROOT / f"Pulumi.{s}.yaml").exists()]
    if unknown:
        print(f"fleet: no Pulumi.<stack>.yaml for {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.parallel < 1 or args.canary < 0:
        print("fleet: --parallel must be >= 1 and --canary >= 0", file=sys.stderr)
        return 2
    command: Command = args.command
    summary = roll_out(stacks, runner or AutomationRunner(), command, parallel=args.parallel, canary=args.canary,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    args.summary.with_suffix(".json").write_text(summary.as_json() + "\n", encoding="utf-8")
    markdown = summary.as_markdown()
    args.summary.with_suffix(".md").write_text(markdown, encoding="utf-8")
    sys.stdout.write(markdown)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
