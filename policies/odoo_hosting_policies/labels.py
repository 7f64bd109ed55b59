"""ISO-01: every resource carries its client's id, and a stack holds one client."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    applies_to=LABELLED_TYPES,
    config=_CONFIG,
    scope="client",
)

# Every pulumi-aws resource type that takes `tags`, generated from pulumi-aws
# (tests/policy/test_aws_tagging.py checks it against the installed SDK).
AWS_TAGGED_TYPES: frozenset[str] = frozenset(
    line.strip() for line in (Path(__file__).with_name("aws_tagged_types.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#"))


def _default_tags(provider: Any) -> Mapping[str, Any]:
    """The provider's defaultTags.tags (provider inputs may arrive JSON-encoded)."""
    if provider is None or provider.resource_type != "pulumi:providers:aws":
        return {}
    value = get(provider.props, "defaultTags")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    tags = value.get("tags") if isinstance(value, Mapping) else None
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return {}
    return tags if isinstance(tags, Mapping) else {}


def _validate_aws_client_tag(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    key = config_string(args, "clientLabelKey", DEFAULT_CLIENT_LABEL, _LABEL_KEY)
    tags = get(args.props, "tags", {})
    value = tags[key] if isinstance(tags, Mapping) and key in tags else None
    if value is None:
        defaults = _default_tags(args.provider)
        value = defaults.get(key)
    if not isinstance(value, str) or not value.strip():
        report_violation(
            f"the resource has no non-empty '{key}' tag (own tags or its provider's defaultTags), so it "
            f"cannot be traced to its client; set tags['{key}'] to the client id.", None)


aws_client_tag = resource_policy(
    name="aws-resource-client-tag",
    description="Checks that every AWS resource that takes tags carries the client tag with a non-empty "
                "value (its own tags or its provider's defaultTags).",
    controls=["ISO-01"],
    severity=Severity.MEDIUM,
    remediation="Set default_tags={'tags': {'client': <client id>}} on the client's aws.Provider, or "
                "tags={'client': <client id>} on each resource (the key is the clientLabelKey setting).",
    validate=_validate_aws_client_tag,
    applies_to=AWS_TAGGED_TYPES,
    config=_CONFIG,
    scope="client",
)


# Where a resource keeps its labels or tags: hcloud labels and AWS tags are
# maps, Docker container labels a list of {label, value}.
_LABEL_INPUTS = ("labels", "tags")


def _bag_value(bag: Any, key: str) -> Any:
    if isinstance(bag, Mapping):
        return bag.get(key)
    if isinstance(bag, Sequence) and not isinstance(bag, str):
        for i in range(len(bag)):
            item = bag[i]
            if isinstance(item, Mapping) and "label" in item and item["label"] == key:
                return item.get("value")
    return None


def _client_of(resource: Any, key: str) -> str | None:
    for name in _LABEL_INPUTS:
        try:
            value = _bag_value(get(resource.props, name), key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        except UnknownValueError:
            # Not known yet: the per-resource policy reports it; nothing to compare here.
            continue
    return None


def _validate_single_client(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    key = config_string(args, "clientLabelKey", DEFAULT_CLIENT_LABEL, _LABEL_KEY)
    first: tuple[str, Any] | None = None
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
    scope="client",
)
