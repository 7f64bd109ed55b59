"""The compliance report: per stack, control -> status -> policies and resources.

Plain Markdown meant to be read as a pull-request comment. Control IDs and
their wording come from the pack itself (each policy's compliance framework:
``reference`` holds the IDs, ``specification`` the text), so the report
works for any pack that follows that convention.

Status of a control in a stack:
- **violated**: a mandatory violation names it;
- **advisory**: only advisory findings name it;
- **kept**: its policies judged at least one resource (or the stack) and
  found nothing;
- **not applicable**: every policy of the control declared itself not
  applicable to everything in the stack (nothing of that kind is there).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from .analyzer import PolicyInfo, Violation
from .report import StackResult, _urn_parts, insecure_connections, write_output

_SPEC_RE = re.compile(r"([A-Z]{2,4}-\d{2}): (.*?)(?= [A-Z]{2,4}-\d{2}: |$)", re.S)
_STATUS_ORDER = {"violated": 0, "not judged": 1, "advisory": 2, "kept": 3, "not applicable": 4}
_STATUS_LABEL = {
    "violated": "❌ violated",
    "not judged": "❓ not judged (a value its mandatory policy reads is unknown at preview)",
    "advisory": "⚠️ advisory",
    "kept": "✅ kept",
    "not applicable": "➖ not applicable",
}
_MAX_NAMES = 6


def control_titles(policies: Iterable[PolicyInfo]) -> dict[str, str]:
    """Control ID -> its one-line wording, from the policies' framework text."""
    titles: dict[str, str] = {}
    for policy in policies:
        for control, text in _SPEC_RE.findall(policy.specification or ""):
            titles.setdefault(control, text.strip())
    return titles


def _control_key(control: str) -> tuple[str, int]:
    prefix, _, number = control.partition("-")
    return prefix, int(number) if number.isdigit() else 0


def _names(urns: Iterable[str]) -> list[str]:
    names = []
    for urn in urns:
        name = _urn_parts(urn)[0] if urn else "(stack)"
        if name and name not in names:
            names.append(name)
    return names


def _short(names: list[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(f"`{n}`" for n in names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def control_rows(result: StackResult, policies: list[PolicyInfo]) -> list[dict[str, Any]]:
    """One row per control the pack knows: status, policies, resources."""
    by_control: OrderedDict[str, list[PolicyInfo]] = OrderedDict()
    for policy in policies:
        if policy.enforcement == "disabled":
            continue
        for control in policy.controls:
            by_control.setdefault(control, []).append(policy)
    violations_by_control: dict[str, list[Violation]] = {}
    for v in result.violations:
        for control in v.controls:
            violations_by_control.setdefault(control, []).append(v)

    rows = []
    for control in sorted(by_control, key=_control_key):
        found = violations_by_control.get(control, [])
        judged = [urn for p in by_control[control] for urn in result.judged.get(p.name, [])]
        if any(v.enforcement == "mandatory" and not v.not_judged for v in found):
            status = "violated"
        elif any(v.enforcement == "mandatory" for v in found):
            status = "not judged"
        elif found:
            status = "advisory"
        elif judged:
            status = "kept"
        else:
            status = "not applicable"
        if found:
            policy_names = sorted({v.policy for v in found})
            resources = _names(v.urn for v in found)
        else:
            policy_names = sorted(p.name for p in by_control[control])
            resources = [n for n in _names(judged) if n != "(stack)"] if status == "kept" else []
        rows.append({"control": control, "status": status, "policies": policy_names, "resources": resources})
    return rows


def _stack_section(result: StackResult, policies: list[PolicyInfo], titles: dict[str, str]) -> list[str]:
    lines = []
    if result.error:
        return [f"## `{result.stack}`: error", "",
                f"The program did not run, so nothing was judged: {result.error}", ""]
    rows = control_rows(result, policies)
    mandatory = sum(1 for v in result.violations if v.enforcement == "mandatory")
    advisory = len(result.violations) - mandatory
    not_judged = sum(1 for v in result.violations if v.enforcement == "mandatory" and v.not_judged)
    verdict = ("FAIL" if mandatory > not_judged else "INCOMPLETE" if mandatory
               else "PASS, components unchecked" if result.unchecked else "PASS")
    lines += [
        f"## `{result.stack}`: {verdict}",
        "",
        f"Program `{result.program}`: {len(result.resources)} resources, "
        f"{mandatory} mandatory and {advisory} advisory findings.",
        "",
    ]
    if result.unchecked:
        lines += ["Unchecked (components from a provider plugin, accepted unexpanded with --allow-unexpanded; "
                  "nothing they create was judged): " + ", ".join(f"`{u}`" for u in result.unchecked), ""]
    lines += [
        "| Control | Status | Policies | Resources |",
        "|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (_STATUS_ORDER[r["status"]], _control_key(r["control"]))):
        title = titles.get(row["control"], "")
        control = f"**{row['control']}** {title}" if title else f"**{row['control']}**"
        policy_text = ", ".join(f"`{p}`" for p in row["policies"])
        lines.append(f"| {control} | {_STATUS_LABEL[row['status']]} | {policy_text} | {_short(row['resources'])} |")
    lines.append("")

    insecure = insecure_connections(result)
    lines.append("### Insecure connections")
    lines.append("")
    if insecure:
        lines.append("Plaintext connections to outside systems. They are not blocked (TLS-03): tell the client.")
        lines.append("")
        for c in insecure:
            what = c["url"] or c.get("message", "")
            lines.append(f"- `{c['name'] or '?'}`: `{what}` (policy `{c['policy']}`)")
    else:
        lines.append("None found.")
    lines.append("")

    if result.violations:
        lines += [f"<details><summary>Findings ({len(result.violations)})</summary>", ""]
        for v in result.violations:
            name, typ = _urn_parts(v.urn)
            where = f"`{name}` ({typ})" if name else "the stack"
            message = " ".join(v.message.split("\n")[1:] or [v.message]).strip() or v.message
            lines.append(f"- **{v.enforcement}** `{v.policy}` [{', '.join(v.controls)}] on {where}: {message}")
        lines += ["", "</details>", ""]
    return lines


def render_report(results: list[StackResult], policies: list[PolicyInfo], pack_dir: str = "") -> str:
    """The whole report as Markdown."""
    titles = control_titles(policies)
    mandatory = sum(1 for r in results for v in r.violations if v.enforcement == "mandatory")
    errors = sum(1 for r in results if r.error)
    verdict = "ERROR" if errors else ("FAIL" if mandatory else "PASS")
    pack = os.path.basename(os.path.normpath(pack_dir)) if pack_dir else "policy pack"
    lines = [
        f"# Policy compliance: {verdict}",
        "",
        f"Offline preview (`python -m preflight`) of {len(results)} stack(s) against `{pack}` "
        f"({len(policies)} policies): {mandatory} mandatory violation(s), {errors} stack error(s). "
        "Statuses: kept = judged and fine; violated = a mandatory policy failed; advisory = warned, "
        "not blocked; not applicable = nothing of that kind in the stack.",
        "",
    ]
    for result in results:
        lines += _stack_section(result, policies, titles)
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: list[StackResult], policies: list[PolicyInfo], path: str, pack_dir: str = "") -> None:
    """Write the Markdown report to a file, or to stdout for "-"."""
    write_output(render_report(results, policies, pack_dir), path)
