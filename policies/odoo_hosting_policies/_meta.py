"""How every policy of the pack is built: name, description, severity,
remediation, control IDs (compliance framework) and config handling.

The preflight harness and auditors read the control IDs from
``framework.reference`` (comma-separated), so every policy goes through
:func:`resource_policy` or :func:`stack_policy`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

from pulumi_policy import (
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

FRAMEWORK_NAME = "odoo-hosting-controls"
FRAMEWORK_VERSION = "1"

# One line per control this pack enforces (the catalog is controls.md).
CONTROLS = {
    "ACC-01": "SSH is key-only (effective sshd configuration); the server is created with SSH keys.",
    "ACC-02": "SSH and admin/database ports are unreachable from the internet; the cloud firewall "
              "opens only 80/443 and the WireGuard UDP port.",
    "TLS-02": "VPN-only client systems expose nothing to the internet but the WireGuard UDP port.",
    "DSK-01": "Client data lives on a LUKS2 volume; the cloud provider must not format or automount it.",
    "REL-01": "Data-bearing resources are protected against deletion (Pulumi protect plus provider "
              "delete protection).",
    "ISO-01": "Each client is its own island; every resource carries the client id.",
    "RES-01": "All compute and data stay in the EU: Hetzner fsn1/nbg1/hel1 (eu-central), AWS eu-*.",
    "BKP-02": "Backups are stored in an EU region.",
}

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


def resource_policy(*, name: str, description: str, controls: Sequence[str], severity: Severity,
                    remediation: str, validate: Callable[[ResourceValidationArgs, ReportViolation], None],
                    config: Optional[Mapping[str, Mapping[str, Any]]] = None) -> ResourceValidationPolicy:
    _check_metadata(name, description)
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=_guard_config(validate),
        severity=severity,
        framework=_framework(controls),
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties=dict(config)) if config else None,
    )


def stack_policy(*, name: str, description: str, controls: Sequence[str], severity: Severity,
                 remediation: str, validate: Callable[[StackValidationArgs, ReportViolation], None],
                 config: Optional[Mapping[str, Mapping[str, Any]]] = None) -> StackValidationPolicy:
    _check_metadata(name, description)
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=_guard_config(validate),
        severity=severity,
        framework=_framework(controls),
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties=dict(config)) if config else None,
    )


# --- config ------------------------------------------------------------------
# The engine hands numbers over as floats (JSON); 51820.0 is a fine port.

def config_value(args: Any, key: str, default: Any) -> Any:
    cfg = args.get_config() or {}
    return cfg[key] if key in cfg and cfg[key] is not None else default


def config_string_list(args: Any, key: str, default: Sequence[str],
                       pattern: Optional[re.Pattern] = None) -> List[str]:
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


def config_port_list(args: Any, key: str, default: Iterable[int]) -> List[int]:
    value = config_value(args, key, list(default))
    if not isinstance(value, (list, tuple)):
        raise PolicyConfigError(key, f"must be a list of port numbers, got {value!r}")
    return [_as_port(key, v) for v in value]


def config_string(args: Any, key: str, default: str, pattern: Optional[re.Pattern] = None) -> str:
    value = config_value(args, key, default)
    if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value.strip())):
        raise PolicyConfigError(key, f"must be a non-empty string{' matching ' + pattern.pattern if pattern else ''}, "
                                     f"got {value!r}")
    return value.strip()


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


def labels_of(props: Mapping[str, Any], key: str = "labels") -> Mapping[str, Any]:
    value = get(props, key, {})
    return value if isinstance(value, Mapping) else {}
