"""How every policy of the pack is built: name, description, severity,
remediation, control IDs (compliance framework) and config handling.

The preflight harness and auditors read the control IDs from
``framework.reference`` (comma-separated), so every policy goes through
:func:`resource_policy` or :func:`stack_policy`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from ._scope import SCOPE_CONFIG, client_only, in_client_stack
from ._servicer import APPLIES_TO_ATTR

CATALOG_PATH = Path(__file__).with_name("controls.yaml")
"""The controls catalog (the specification); docs/controls.md is rendered from it."""


def load_catalog() -> dict[str, Any]:
    with open(CATALOG_PATH, encoding="utf-8") as handle:
        catalog: dict[str, Any] = yaml.safe_load(handle)
    return catalog


_CATALOG = load_catalog()
FRAMEWORK_NAME = _CATALOG["framework"]["name"]
FRAMEWORK_VERSION = str(_CATALOG["framework"]["version"])

# One line per control, as the policies' compliance framework states it: the catalog's
# summary where it has one, else the control's full text.
CONTROLS = {c["id"]: c.get("summary") or c["control"] for c in _CATALOG["controls"]}

_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+){2,}$")


class PolicyConfigError(Exception):
    """A policy config value is wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"policy config '{key}' {problem}")
        self.key = key


def _framework(controls: Sequence[str]) -> PolicyComplianceFramework:
    unknown = [c for c in controls if c not in CONTROLS]
    if not controls or unknown:
        raise ValueError(f"unknown control IDs {unknown or controls}")
    return PolicyComplianceFramework(
        name=FRAMEWORK_NAME,
        version=FRAMEWORK_VERSION,
        reference=",".join(controls),
        specification=" ".join(f"{c}: {CONTROLS[c]}" for c in controls),
    )


def _check_metadata(name: str, description: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(f"policy name {name!r} is not kebab-case <provider>-<resource>-<rule>")
    if not description.startswith("Checks that "):
        raise ValueError(f"policy {name}: description must start with 'Checks that '")


def _guard_config(validate: Callable[[Any, ReportViolation], None]) -> Callable[[Any, ReportViolation], None]:
    """A bad config value is reported as a violation naming the key (not a crash).

    UnknownValueError is deliberately not caught: the SDK turns it into the
    "can't run policy during preview" advisory.
    """

    def guarded(args: Any, report_violation: ReportViolation) -> None:
        try:
            validate(args, report_violation)
        except PolicyConfigError as e:
            report_violation(f"{e} (fix the policy pack configuration)", None)

    return guarded


AppliesTo = Sequence[str] | AbstractSet[str] | Callable[[str], bool] | None
Scope = Literal["baseline", "client", "mixed"]
"""``baseline``: any program's resources; ``client``: only resources inside a client stack (``_scope``);
``mixed``: any program's resources, with stricter checks the policy itself applies inside a client stack
(:func:`in_client`)."""


def in_client(args: Any, urn: str | None = None) -> bool:
    """Whether the resource (``urn``, default the judged one) is inside a client stack under the policy's config."""
    return in_client_stack(urn if urn is not None else args.urn, args.get_config())


def _scoped(validate: Callable[[Any, ReportViolation], None], scope: Scope, *,
            stack: bool = False) -> Callable[[Any, ReportViolation], None]:
    if scope in ("baseline", "mixed"):
        return validate
    if scope != "client":
        raise ValueError(f"scope must be 'baseline' or 'client', got {scope!r}")
    return client_only(validate, stack=stack)


def _schema(config: Mapping[str, dict[str, Any]] | None, scope: Scope) -> PolicyConfigSchema | None:
    properties = dict(config or {})
    if scope in ("client", "mixed"):
        properties.update(SCOPE_CONFIG)
    return PolicyConfigSchema(properties=properties) if properties else None


def _type_filter(applies_to: AppliesTo) -> tuple[Callable[[str], bool], str] | None:
    """(predicate on the type token, not-applicable reason) for ``applies_to``; None judges every type."""
    if applies_to is None:
        return None
    if isinstance(applies_to, str):
        raise TypeError("applies_to takes a collection of type tokens or a predicate, not a single string")
    if callable(applies_to):
        return applies_to, "judges only the resource types its predicate accepts"
    types = frozenset(applies_to)
    if not types:
        raise ValueError("applies_to is an empty collection; the policy would judge nothing")
    return types.__contains__, f"judges only {', '.join(sorted(types))}"


def _only_for(type_filter: tuple[Callable[[str], bool], str] | None,
              validate: Callable[[Any, ReportViolation], None], *,
              stack: bool = False) -> Callable[[Any, ReportViolation], None]:
    """``validate`` preceded by the type check: another type gets ``args.not_applicable(...)``;
    with ``stack``, a stack holding none of the types does.

    The check lives here once, so a policy's validate function does not
    repeat it: it only ever sees the types its ``applies_to`` names. (The
    pack's servicer makes the same check before it builds the arguments,
    see ``_servicer``; this one keeps the policy right under any servicer.)"""
    if type_filter is None:
        return validate
    judged, reason = type_filter
    if stack:
        reason = f"{reason}; the stack has none"

        def applicable(args: Any) -> bool:
            return any(judged(r.resource_type) for r in args.resources)
    else:
        def applicable(args: Any) -> bool:
            return judged(args.resource_type)

    def typed(args: Any, report_violation: ReportViolation) -> None:
        if not applicable(args):
            args.not_applicable(reason)
        validate(args, report_violation)

    return typed


def resource_policy(*, name: str, description: str, controls: Sequence[str], severity: Severity,
                    remediation: str, validate: Callable[[ResourceValidationArgs, ReportViolation], None],
                    config: Mapping[str, dict[str, Any]] | None = None,
                    enforcement_level: EnforcementLevel | None = None,
                    applies_to: AppliesTo = None, scope: Scope = "baseline") -> ResourceValidationPolicy:
    """``enforcement_level`` None: the pack's level (mandatory); set it only for advisory controls.

    ``applies_to`` names the resources the policy judges: a collection of Pulumi type tokens
    (``"hcloud:index/server:Server"``; looked up in a frozenset) or a predicate on the type token
    (``lambda t: t.startswith("aws:")``). For any other type the wrapped validate calls
    ``args.not_applicable("judges only ...")`` before ``validate`` runs, and the SDK answers with a
    PolicyNotApplicable entry in the AnalyzeResponse instead of an empty (passing) result. Preflight's
    compliance report uses those not-applicable answers to tell "kept" (judged, no violation) from
    "not applicable" (never judged), so ``applies_to`` must be a superset of every type ``validate``
    can report on. None (the default) keeps the old behaviour: every resource counts as judged.
    A bad config value still becomes a violation naming the key (:func:`_guard_config`).

    ``scope`` "client" makes it a client-stack rule: a resource outside a client stack gets "not
    applicable" (after the type check) and the policy takes the clientStacks/clientComponentTypes
    settings (``_scope``); "baseline" (the default) judges any program's resources.
    """
    _check_metadata(name, description)
    type_filter = _type_filter(applies_to)
    policy = ResourceValidationPolicy(
        name=name,
        description=description,
        enforcement_level=enforcement_level,
        validate=_only_for(type_filter, _guard_config(_scoped(validate, scope))),
        severity=severity,
        framework=_framework(controls),
        remediation_steps=remediation,
        config_schema=_schema(config, scope),
    )
    if type_filter is not None:
        setattr(policy, APPLIES_TO_ATTR, type_filter)
    return policy


def stack_policy(*, name: str, description: str, controls: Sequence[str], severity: Severity,
                 remediation: str, validate: Callable[[StackValidationArgs, ReportViolation], None],
                 config: Mapping[str, dict[str, Any]] | None = None,
                 enforcement_level: EnforcementLevel | None = None,
                 applies_to: AppliesTo = None, scope: Scope = "baseline") -> StackValidationPolicy:
    """``enforcement_level`` None: the pack's level (mandatory); set it only for advisory controls.

    ``applies_to`` (as for :func:`resource_policy`): a stack holding none of those types is answered
    "not applicable" (``args.not_applicable``), so preflight does not count it as judged.
    ``scope`` "client": the policy judges only the stack's client resources (``_scope``)."""
    _check_metadata(name, description)
    return StackValidationPolicy(
        name=name,
        description=description,
        enforcement_level=enforcement_level,
        validate=_guard_config(_scoped(_only_for(_type_filter(applies_to), validate, stack=True), scope,
                                       stack=True)),
        severity=severity,
        framework=_framework(controls),
        remediation_steps=remediation,
        config_schema=_schema(config, scope),
    )


# --- config ------------------------------------------------------------------
# The engine hands numbers over as floats (JSON); 51820.0 is a fine port.

def config_value(args: Any, key: str, default: Any) -> Any:
    cfg = args.get_config() or {}
    return cfg[key] if key in cfg and cfg[key] is not None else default


def config_string_list(args: Any, key: str, default: Sequence[str],
                       pattern: re.Pattern[str] | None = None) -> list[str]:
    value = config_value(args, key, list(default))
    if not isinstance(value, (list, tuple)) or not value:
        raise PolicyConfigError(key, f"must be a non-empty list of strings, got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or (pattern and not pattern.match(item.strip())):
            raise PolicyConfigError(key, f"has an invalid entry {item!r}")
        out.append(item.strip())
    return out


def _as_port(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise PolicyConfigError(key, f"must be a port number 1-65535, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise PolicyConfigError(key, f"must be a port number 1-65535, got {value!r}")
    return value


def config_port(args: Any, key: str, default: int) -> int:
    return _as_port(key, config_value(args, key, default))


def config_port_list(args: Any, key: str, default: Iterable[int]) -> list[int]:
    value = config_value(args, key, list(default))
    if not isinstance(value, (list, tuple)):
        raise PolicyConfigError(key, f"must be a list of port numbers, got {value!r}")
    return [_as_port(key, v) for v in value]


def config_int(args: Any, key: str, default: int, minimum: int | None = None,
               maximum: int | None = None) -> int:
    """A whole number (the engine may hand it over as a float or a numeric string)."""
    value = config_value(args, key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    bounds = (f" >= {minimum}" if minimum is not None else "") + (f" <= {maximum}" if maximum is not None else "")
    if (isinstance(value, bool) or not isinstance(value, int)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise PolicyConfigError(key, f"must be a whole number{bounds}, got {value!r}")
    return value


def config_optional_string_list(args: Any, key: str, pattern: re.Pattern[str] | None = None) -> list[str] | None:
    """A list of strings, or None when the key is absent (the check it tunes is then off)."""
    cfg = args.get_config() or {}
    if key not in cfg or cfg[key] is None:
        return None
    return config_string_list(args, key, (), pattern)


def config_string(args: Any, key: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
    value = config_value(args, key, default)
    if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value.strip())):
        raise PolicyConfigError(key, f"must be a non-empty string{' matching ' + pattern.pattern if pattern else ''}, "
                                     f"got {value!r}")
    return value.strip()


# --- what a policy cannot see ---------------------------------------------------

class CannotCheck(UnknownValueError):
    """A value the policy needs is missing or unreadable: the SDK answers with its advisory
    "can't run policy ... during preview: cannot check ...", never a silent pass."""

    def __init__(self, what: str) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.message = f"cannot check {what}"

    def __str__(self) -> str:
        return self.message


def cannot_check(what: str) -> NoReturn:
    """Stop judging this resource and say what could not be seen (an advisory, see :class:`CannotCheck`)."""
    raise CannotCheck(what)


def container_labels(props: Mapping[str, Any]) -> dict[str, Any]:
    """Docker labels: pulumi-docker takes a list of {label, value}; a mapping is accepted too."""
    raw = get(props, "labels")
    if isinstance(raw, Mapping):
        return {str(k): raw[k] for k in raw}
    out = {}
    for item in as_list(raw):
        if isinstance(item, Mapping):
            out[str(get(item, "label", ""))] = get(item, "value")
    return out


# --- exposure ------------------------------------------------------------------

ADMIN_PORTS = frozenset({
    22, 23, 445, 1433, 1521, 2375, 2376, 2379, 3306, 3389, 5432, 5900, 5984, 6379, 8069, 8072, 8200, 9200,
    10250, 11211, 27017,
})
"""Admin and database ports that no resource may open to the internet (SSH, telnet, SMB, MSSQL, Oracle,
the Docker API, etcd, MySQL, RDP, PostgreSQL, VNC, CouchDB, Redis, Odoo's own ports, Vault, Elasticsearch,
the kubelet, memcached, MongoDB)."""


# --- reading resource inputs ---------------------------------------------------

def get(props: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``props[key]`` or ``default``; an unknown value raises UnknownValueError.

    (``Mapping.get`` on the SDK's proxy also raises for unknowns; this spells
    the intent out and treats an explicit null as absent.)
    """
    try:
        value = props[key]
    except KeyError:
        return default
    return default if value is None else value


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def as_number(value: Any) -> float | None:
    """A number given as int, float or numeric string (``"4096"``); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def shown(value: Any) -> str:
    """A value for a message: 3600.0 (the engine's JSON number) reads as 3600."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_list(value: Any) -> list[Any]:
    """A list input that a program may also give as a single value; every element is read
    (an unknown element raises UnknownValueError)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return [value]
    return [value[i] for i in range(len(value))]


def labels_of(props: Mapping[str, Any], key: str = "labels") -> Mapping[str, Any]:
    value = get(props, key, {})
    return value if isinstance(value, Mapping) else {}
