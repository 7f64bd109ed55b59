"""Render the controls catalog (policies/odoo_hosting_policies/controls.yaml) for people.

    .venv/bin/python tools/render_controls.py [--check]

Writes docs/controls.md (the catalog as auditors read it) and the README's
"Which part keeps which promise" table, whose policy column comes from the
pack itself (each policy's control IDs). ``--check`` exits 1 when either is
out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "policies"))

from odoo_hosting_policies import ALL_POLICIES  # noqa: E402
from odoo_hosting_policies._meta import load_catalog  # noqa: E402

DOC = ROOT / "docs" / "controls.md"
README = ROOT / "README.md"
BEGIN = "<!-- promise table: generated from policies/odoo_hosting_policies/controls.yaml -->"
END = "<!-- end of promise table -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_doc(catalog: Mapping[str, Any]) -> str:
    framework = catalog["framework"]
    lines = [f"# {framework['title']} ({framework['name']}, version {framework['version']})", "",
             "<!-- generated from policies/odoo_hosting_policies/controls.yaml by tools/render_controls.py -->", "",
             catalog["intro"].strip(), "", f"Source: {catalog['source']}.", ""]
    area = None
    for control in catalog["controls"]:
        if control["area"] != area:
            area = control["area"]
            lines += ["", f"## {area}", "", "| ID | Control | How |", "|---|---|---|"]
        lines.append(f"| {control['id']} | {_cell(control['control'])} | {', '.join(control['how'])} |")
    cases = catalog["generic_cases"]
    lines += ["", "## Resource-level cases any conforming policy pack must catch", "", cases["intro"], ""]
    lines += [f"- {case}" for case in cases["cases"]]
    return "\n".join(lines) + "\n"


def render_table(catalog: Mapping[str, Any]) -> str:
    enforcing: dict[str, list[str]] = {}
    for policy in ALL_POLICIES:
        framework = policy.framework
        if framework is None or framework.reference is None:
            raise SystemExit(f"policy {policy.name} names no control (framework.reference)")
        for control in framework.reference.split(","):
            enforcing.setdefault(control.strip(), []).append(f"`{policy.name}`")
    rows = [BEGIN, "| control | how | built by | enforced by (policy) | proved by (tests) |", "|---|---|---|---|---|"]
    for c in catalog["controls"]:
        rows.append(f"| {c['id']} {_cell(c.get('summary') or c['control'])} | {', '.join(c['how'])} | "
                    f"{_cell(c.get('built_by', ''))} | {', '.join(enforcing.get(c['id'], [])) or '(none)'} | "
                    f"{_cell(c.get('proved_by', ''))} |")
    return "\n".join([*rows, END])


def render_readme(text: str, catalog: Mapping[str, Any]) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {BEGIN!r} marker")
    return pattern.sub(lambda _match: render_table(catalog), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    catalog = load_catalog()
    stale = []
    for path, render in ((DOC, render_doc), (README, lambda c: render_readme(README.read_text(), c))):
        new = render(catalog)
        if not path.exists() or path.read_text(encoding="utf-8") != new:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if stale:
        print(("out of date: " if args.check else "rendered: ") + ", ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
