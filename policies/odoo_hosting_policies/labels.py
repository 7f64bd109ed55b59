"""ISO-01: every resource carries its client's id, and a stack holds one client."""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Tuple

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from ._meta import config_string, get, resource_policy, stack_policy

DEFAULT_CLIENT_LABEL = "client"

# Every hcloud resource type whose inputs include `labels`.
LABELLED_TYPES = frozenset(
    "hcloud:index/" + t for t in (
        "server:Server", "volume:Volume", "network:Network", "firewall:Firewall", "sshKey:SshKey",
        "primaryIp:PrimaryIp", "floatingIp:FloatingIp", "loadBalancer:LoadBalancer",
        "certificate:Certificate", "managedCertificate:ManagedCertificate",
        "uploadedCertificate:UploadedCertificate", "placementGroup:PlacementGroup",
        "snapshot:Snapshot", "storageBox:StorageBox", "storageBoxSnapshot:StorageBoxSnapshot",
        "storageBoxSubaccount:StorageBoxSubaccount", "zone:Zone", "zoneRrset:ZoneRrset",
    )
)

# Hetzner label keys: optional DNS prefix, then a name of 1-63 characters.
_LABEL_KEY = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")

_CONFIG = {
    "clientLabelKey": {
        "type": "string", "minLength": 1, "default": DEFAULT_CLIENT_LABEL,
        "description": "Label (hcloud) or tag (AWS) key that carries the client id.",
    },
}


def _validate_client_label(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in LABELLED_TYPES:
        return
    key = config_string(args, "clientLabelKey", DEFAULT_CLIENT_LABEL, _LABEL_KEY)
    labels = get(args.props, "labels", {})
    value = labels[key] if isinstance(labels, Mapping) and key in labels else None
    if not isinstance(value, str) or not value.strip():
        report_violation(
            f"the resource has no non-empty '{key}' label, so it cannot be traced to its client; "
            f"set labels['{key}'] to the client id.", None)


hcloud_client_label = resource_policy(
    name="hcloud-resource-client-label",
    description="Checks that every Hetzner resource that takes labels carries the client label with a "
                "non-empty value.",
    controls=["ISO-01"],
    severity=Severity.MEDIUM,
    remediation="Pass labels={'client': <client id>, ...} to every hcloud resource (the key is the "
                "clientLabelKey policy setting).",
    validate=_validate_client_label,
    config=_CONFIG,
)

# Where a resource keeps its labels or tags, by provider prefix.
_LABEL_INPUTS = ("labels", "tags")


def _client_of(resource: Any, key: str) -> Optional[str]:
    for name in _LABEL_INPUTS:
        try:
            bag = get(resource.props, name)
            if isinstance(bag, Mapping) and key in bag:
                value = bag[key]
                if isinstance(value, str) and value.strip():
                    return value.strip()
        except UnknownValueError:
            # Not known yet: the per-resource policy reports it; nothing to compare here.
            continue
    return None


def _validate_single_client(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    key = config_string(args, "clientLabelKey", DEFAULT_CLIENT_LABEL, _LABEL_KEY)
    first: Optional[Tuple[str, Any]] = None
    for resource in args.resources:
        client = _client_of(resource, key)
        if client is None:
            continue
        if first is None:
            first = (client, resource)
        elif client != first[0]:
            report_violation(
                f"resource '{resource.name}' ({resource.resource_type}) carries {key}='{client}' but "
                f"'{first[1].name}' carries {key}='{first[0]}'; one stack must hold one client. Move it "
                "to that client's own stack or fix the label.", resource.urn)


pulumi_stack_single_client = stack_policy(
    name="pulumi-stack-single-client",
    description="Checks that all resources of a stack that carry the client label or tag carry the same "
                "client id.",
    controls=["ISO-01"],
    severity=Severity.HIGH,
    remediation="Keep each client in its own stack; every label/tag 'client' in a stack has that stack's "
                "client id.",
    validate=_validate_single_client,
    config=_CONFIG,
)
