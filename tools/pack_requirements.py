"""Write policies/requirements.txt: the policy pack's dependencies, exactly as requirements.lock pins them.

    .venv/bin/python tools/pack_requirements.py [--check]

The pack is published alone (`pulumi policy publish`), so it carries its own
requirements; they are cut out of the project's lock (the single source of
installed versions): the lock's entries, hashes included, for the closure of
the pack's top-level needs (POLICY_PACK_NEEDS) as installed from that lock.
``--check`` exits 1 when the file is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
OUTPUT = ROOT / "policies" / "requirements.txt"
POLICY_PACK_NEEDS = ("pulumi-policy", "PyYAML")
"""What policies/ imports: pulumi_policy (and so pulumi) and yaml (cloud-config parsing)."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: tuple[str, ...]) -> set[str]:
    """Every distribution ``names`` need, by the metadata of what is installed."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if _canonical(name) in seen:
            continue
        seen.add(_canonical(name))
        for text in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def lock_entries(text: str) -> dict[str, str]:
    """The lock's entries by canonical name: ``name==version`` with its hash lines (no comments)."""
    entries: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", line)
        if match:
            current = _canonical(match.group(1))
            entries[current] = line + "\n"
        elif current and line.startswith("    --hash="):
            entries[current] += line + "\n"
        else:
            current = None if not line.startswith("    ") else current
    return entries


def render() -> str:
    entries = lock_entries(LOCK.read_text(encoding="utf-8"))
    needed = closure(POLICY_PACK_NEEDS)
    missing = sorted(needed - set(entries))
    if missing:
        raise SystemExit(f"requirements.lock lacks {', '.join(missing)}: run `make lock`")
    header = ("# The policy pack's dependencies, cut from requirements.lock by tools/pack_requirements.py\n"
              "# (do not edit; `make lock` rewrites it). Installed with --require-hashes.\n")
    return header + "".join(entries[name] for name in sorted(needed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if text != current:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run .venv/bin/python tools/pack_requirements.py",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
