"""The pack's two scopes: the baseline (any program) and the client-stack rules.

A *baseline* policy judges every resource of its types, in any Pulumi
program, with generic messages. A *client-stack* policy (client labels and
tags, backup bucket tiers and lock, the backup agent, the Odoo jail, the
proxy's role, odoo.conf...) judges only resources that are inside an
odoo-hosting client stack:

- the resource's URN names an odoo-hosting ``ClientStack`` component in its
  parent chain (the URN's type part is ``parent$child$...$type``), or the
  resource is that component; the component types are the policy setting
  ``clientComponentTypes`` (default ``odoo-hosting:client:ClientStack``);
- or the stack's name (from the URN) matches one of the shell-style patterns
  of the policy setting ``clientStacks`` (default: none), for a program that
  builds a client without the component.

Anything else gets "not applicable", so a third-party program is judged by
the baseline alone. A client-stack stack policy judges the stack's client
resources only (and is not applicable to a stack that has none).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs

CLIENT_STACK_TYPE = "odoo-hosting:client:ClientStack"

NOT_IN_CLIENT_STACK = ("judges only resources inside an odoo-hosting ClientStack component (or in a stack "
                       "named by the clientStacks setting)")

SCOPE_CONFIG: dict[str, dict[str, Any]] = {
    "clientStacks": {
        "type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
        "description": "Stack names (shell-style patterns, e.g. 'client-*') whose every resource is judged by "
                       "the client-stack rules, for programs that build a client without the ClientStack "
                       "component.",
    },
    "clientComponentTypes": {
        "type": "array", "items": {"type": "string", "minLength": 1}, "default": [CLIENT_STACK_TYPE],
        "description": "Component type tokens that mark a client stack: a resource whose URN has one of them "
                       "in its parent chain is judged by the client-stack rules.",
    },
}


def _strings(cfg: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    from ._meta import PolicyConfigError

    value = cfg.get(key) if cfg else None
    if value is None:
        return default
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyConfigError(key, f"must be a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


@functools.lru_cache(maxsize=4096)
def _inside(urn: str, stacks: tuple[str, ...], types: tuple[str, ...]) -> bool:
    parts = urn.split("::")
    if len(parts) < 4:
        return False
    stack = parts[0].rsplit(":", 1)[-1]
    if any(fnmatchcase(stack, pattern) for pattern in stacks):
        return True
    chain = parts[2].split("$")
    return any(t in chain for t in types)


def in_client_stack(urn: str, cfg: Any) -> bool:
    """Whether the resource with ``urn`` is judged by the client-stack rules under policy config ``cfg``."""
    stacks = _strings(cfg, "clientStacks", ())
    types = _strings(cfg, "clientComponentTypes", (CLIENT_STACK_TYPE,))
    return _inside(urn, stacks, types)


Validate = Callable[[Any, ReportViolation], None]


def client_only(validate: Validate, *, stack: bool = False) -> Validate:
    """``validate`` for the client scope: outside it the policy answers "not applicable"; a stack
    policy sees only the stack's client resources."""
    if stack:
        def scoped_stack(args: Any, report_violation: ReportViolation) -> None:
            cfg = args.get_config()
            mine = [r for r in args.resources if in_client_stack(r.urn, cfg)]
            if not mine:
                args.not_applicable(f"{NOT_IN_CLIENT_STACK}; the stack has none")
            if len(mine) != len(args.resources):
                args = StackValidationArgs(mine, cfg, getattr(args, "stack_tags", None))
            validate(args, report_violation)

        return scoped_stack

    def scoped(args: Any, report_violation: ReportViolation) -> None:
        if not in_client_stack(args.urn, args.get_config()):
            args.not_applicable(NOT_IN_CLIENT_STACK)
        validate(args, report_violation)

    return scoped


def client_resources(resources: Sequence[Any], cfg: Any) -> list[Any]:
    return [r for r in resources if in_client_stack(r.urn, cfg)]
