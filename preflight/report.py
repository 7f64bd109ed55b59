"""Output: the readable summary, the verdict JSON, the resource list."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import MASK
from .analyzer import PolicyInfo, Violation
from .recording import ResourceRecord, resource_view


@dataclass
class StackResult:
    """Verdict for one stack of one program."""

    program: str
    stack: str
    resources: list[ResourceRecord] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    error: str | None = None
    elapsed_ms: float = 0.0
    judged: dict[str, list[str]] = field(default_factory=dict)
    """Policy name -> URNs it judged (see analyzer.Analysis)."""
    unchecked: list[str] = field(default_factory=list)
    """"type name" of components accepted unexpanded (--allow-unexpanded): what they create is not judged."""


def _urn_parts(urn: str) -> tuple[str, str]:
    """(name, type) of a URN; ("", "") when there is none (stack-level finding)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return "", ""
    return "::".join(parts[3:]), parts[2].split("$")[-1]


INSECURE_CONNECTION_CONTROL = "TLS-03"
_CONNECTION_RE = re.compile(r"outside connection '([^']*)' \(([^)]*)\)")


def insecure_connections(result: StackResult) -> list[dict[str, Any]]:
    """The plaintext outside connections of a stack (TLS-03 findings), for the client.

    Read from the TLS-03 policies' violations, whose messages name the
    endpoint as ``outside connection '<name>' (<url>)``; a message in another
    form is kept whole."""
    found = []
    for v in result.violations:
        if INSECURE_CONNECTION_CONTROL not in v.controls:
            continue
        name, _typ = _urn_parts(v.urn)
        matches = _CONNECTION_RE.findall(v.message)
        for conn, url in matches or [("", "")]:
            entry = {"name": conn, "url": url, "resource": name, "policy": v.policy}
            if not matches:
                entry["message"] = v.message
            if entry not in found:
                found.append(entry)
    return found


def mandatory_count(results: list[StackResult]) -> int:
    return sum(1 for r in results for v in r.violations if v.enforcement == "mandatory")


def exit_code(results: list[StackResult]) -> int:
    if any(r.error for r in results):
        return 2
    return 1 if mandatory_count(results) else 0


def write_text(results: list[StackResult], out: TextIO) -> None:
    """The human summary: one block per stack, then the verdict line."""
    for r in results:
        header = f"{r.stack}  ({r.program})"
        if r.error:
            out.write(f"== {header}: ERROR\n   {r.error}\n\n")
            continue
        out.write(f"== {header}: {len(r.resources)} resources, {len(r.violations)} violations\n")
        for v in r.violations:
            name, typ = _urn_parts(v.urn)
            where = f"{name} ({typ})" if name else "stack"
            controls = f" [{', '.join(v.controls)}]" if v.controls else ""
            label = f"{v.enforcement.upper()}{' NOT JUDGED' if v.not_judged else ''}"
            out.write(f"   {label:9} {v.policy}{controls}  {where}\n")
            for line in v.message.splitlines():
                out.write(f"             {line}\n")
        for item in r.unchecked:
            out.write(f"   UNCHECKED {item}: a component from a provider plugin, accepted unexpanded "
                      "(--allow-unexpanded); what it creates was not judged\n")
        insecure = insecure_connections(r)
        if insecure:
            out.write(f"   insecure connections ({len(insecure)}; not blocked, tell the client):\n")
            for c in insecure:
                out.write(f"     - {c['name'] or '?'}: {c['url'] or c.get('message', '')}\n")
        out.write("\n")
    mandatory = mandatory_count(results)
    advisory = sum(1 for r in results for v in r.violations if v.enforcement == "advisory")
    errors = sum(1 for r in results if r.error)
    not_judged = sum(1 for r in results for v in r.violations if v.not_judged)
    unjudged_mandatory = sum(1 for r in results for v in r.violations if v.not_judged and v.enforcement == "mandatory")
    unchecked = sum(len(r.unchecked) for r in results)
    verdict = "ERROR" if errors else ("FAIL" if mandatory > unjudged_mandatory else
                                      "INCOMPLETE" if mandatory else
                                      f"PASS WITH {unchecked} UNCHECKED COMPONENTS" if unchecked else "PASS")
    out.write(
        f"preflight: {verdict}: {len(results)} stacks, {mandatory} mandatory, {advisory} advisory"
        f" violations, {errors} stack errors"
        + (f"; {not_judged} policy checks could not run (a value they read is unknown at preview;"
           f" {unjudged_mandatory} of them mandatory, never a PASS)" if not_judged else "")
        + "\n"
    )


def verdict_json(results: list[StackResult]) -> dict[str, Any]:
    return {
        "stacks": [
            {
                "program": r.program,
                "stack": r.stack,
                "resources": len(r.resources),
                "error": r.error,
                "violations": [
                    {
                        "policy": v.policy,
                        "controls": v.controls,
                        "enforcement": v.enforcement,
                        "urn": v.urn,
                        "message": v.message,
                        "not_judged": v.not_judged,
                    }
                    for v in r.violations
                ],
                "insecure_connections": insecure_connections(r),
                "unchecked": r.unchecked,
            }
            for r in results
        ]
    }


def resources_json(results: list[StackResult]) -> dict[str, Any]:
    """Recorded resources per stack, in the same order as the verdict's stacks."""
    return {
        "stacks": [
            {"stack": r.stack, "resources": [resource_view(x, MASK) for x in r.resources]}
            for r in results
        ]
    }


def policies_json(policies: list[PolicyInfo]) -> dict[str, Any]:
    return {
        "policies": [
            {"name": p.name, "description": p.description, "enforcement": p.enforcement, "controls": p.controls}
            for p in policies
        ]
    }


def dump(data: dict[str, Any], path: str) -> None:
    """Write JSON to a file, or to stdout for "-"."""
    write_output(json.dumps(data, indent=2) + "\n", path)


def write_output(text: str, path: str) -> None:
    """Write a file (its directory made if needed), or stdout for "-"."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
