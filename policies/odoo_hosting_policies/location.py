"""RES-01 (and BKP-02): compute and data stay in the EU."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import cannot_check, config_optional_string_list, config_string_list, get, resource_policy

DEFAULT_LOCATIONS = ("fsn1", "nbg1", "hel1")
DEFAULT_NETWORK_ZONES = ("eu-central",)
DEFAULT_AWS_REGION_PREFIXES = ("eu-",)

_NAME = re.compile(r"^[a-z0-9-]+$")

# type -> (location-like inputs, whether one of them is required)
_SERVER = "hcloud:index/server:Server"
_LOAD_BALANCER = "hcloud:index/loadBalancer:LoadBalancer"
_LOCATED = {
    _SERVER: ("location", "datacenter"),
    "hcloud:index/volume:Volume": ("location",),
    "hcloud:index/primaryIp:PrimaryIp": ("location", "datacenter"),
    "hcloud:index/floatingIp:FloatingIp": ("homeLocation",),
    _LOAD_BALANCER: ("location",),
    "hcloud:index/storageBox:StorageBox": ("location",),
}
_ZONED = (_LOAD_BALANCER, "hcloud:index/networkSubnet:NetworkSubnet")

_LOCATION_CONFIG = {
    "allowedLocations": {
        "type": "array", "items": {"type": "string"}, "minItems": 1,
        "default": list(DEFAULT_LOCATIONS),
        "description": "Hetzner locations allowed (datacenters are judged by their location prefix).",
    },
    "allowedNetworkZones": {
        "type": "array", "items": {"type": "string"}, "minItems": 1,
        "default": list(DEFAULT_NETWORK_ZONES),
        "description": "Hetzner network zones allowed for subnets and load balancers.",
    },
    "allowedServerTypes": {
        "type": "array", "items": {"type": "string"}, "minItems": 1,
        "description": "Optional: Hetzner server types allowed (e.g. cx23, cx33, cpx22); unset, any type passes.",
    },
}

_AWS_CONFIG = {
    "allowedRegionPrefixes": {
        "type": "array", "items": {"type": "string"}, "minItems": 1,
        "default": list(DEFAULT_AWS_REGION_PREFIXES),
        "description": "AWS region prefixes allowed (e.g. eu-).",
    },
}


def _location_of(key: str, value: str) -> str:
    # A datacenter is "<location>-dc<N>" (fsn1-dc14).
    return value.split("-", 1)[0] if key == "datacenter" else value


def _validate_hcloud(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    keys = _LOCATED.get(args.resource_type)
    zoned = args.resource_type in _ZONED
    if keys is None and not zoned:
        return
    locations = config_string_list(args, "allowedLocations", DEFAULT_LOCATIONS, _NAME)
    zones = config_string_list(args, "allowedNetworkZones", DEFAULT_NETWORK_ZONES, _NAME)
    allowed = ", ".join(locations)
    seen = False
    for key in keys or ():
        value = get(args.props, key)
        if value is None:
            continue
        seen = True
        if not isinstance(value, str) or _location_of(key, value.strip().lower()) not in locations:
            report_violation(
                f"{key} '{value}' is outside the allowed EU locations ({allowed}); set {key} to one of them.", None)
    zone = get(args.props, "networkZone") if zoned else None
    if zone is not None:
        seen = True
        if not isinstance(zone, str) or zone.strip().lower() not in zones:
            report_violation(
                f"networkZone '{zone}' is not an allowed EU network zone ({', '.join(zones)}); "
                f"set networkZone to one of them.", None)
    if args.resource_type == _SERVER:
        types = config_optional_string_list(args, "allowedServerTypes", _NAME)
        server_type = get(args.props, "serverType")
        if types is not None and (not isinstance(server_type, str) or server_type.strip().lower() not in types):
            report_violation(
                f"serverType '{server_type}' is not one of the allowed server types ({', '.join(types)}); "
                "set serverType to one of them.", None)
    if not seen and args.resource_type in (_SERVER, _LOAD_BALANCER):
        what = "location or datacenter" if args.resource_type == _SERVER else "location or networkZone"
        report_violation(
            f"neither {what} is set, so Hetzner picks one, possibly outside the EU; "
            f"set location to one of {allowed}.", None)


hcloud_eu_location = resource_policy(
    name="hcloud-resource-eu-location",
    description="Checks that Hetzner servers, volumes, IPs, load balancers, storage boxes and subnets "
                "are placed in allowed EU locations and network zones (and, when allowedServerTypes is "
                "set, that servers use one of those types).",
    controls=["RES-01"],
    severity=Severity.HIGH,
    remediation="Set location (or a datacenter of an allowed location) to fsn1, nbg1 or hel1, and "
                "networkZone to eu-central.",
    validate=_validate_hcloud,
    applies_to=tuple(_LOCATED) + _ZONED,
    config=_LOCATION_CONFIG,
)


def _region_problem(region: Any, prefixes: list[str]) -> str | None:
    if not isinstance(region, str) or not region.strip().lower().startswith(tuple(prefixes)):
        return f"region '{region}' is not an EU region (allowed prefixes: {', '.join(prefixes)})"
    return None


def _validate_aws_provider(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    prefixes = config_string_list(args, "allowedRegionPrefixes", DEFAULT_AWS_REGION_PREFIXES)
    region = get(args.props, "region")
    if region is None:
        report_violation(
            "the AWS provider has no region, so it would take one from the environment; set region "
            "(aws:region in the stack config, or region= on the explicit provider) to an EU region.", None)
        return
    problem = _region_problem(region, prefixes)
    if problem:
        report_violation(f"{problem}; set the provider's region (aws:region) to an EU region.", None)


aws_provider_eu_region = resource_policy(
    name="aws-provider-eu-region",
    description="Checks that every AWS provider (explicit or default) is pinned to an EU region.",
    controls=["RES-01", "BKP-02"],
    severity=Severity.HIGH,
    remediation="Set `aws:region` in the stack config (default provider) or region= on the explicit "
                "aws.Provider to an eu-* region.",
    validate=_validate_aws_provider,
    applies_to=("pulumi:providers:aws",),
    config=_AWS_CONFIG,
)


def _validate_aws_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    prefixes = config_string_list(args, "allowedRegionPrefixes", DEFAULT_AWS_REGION_PREFIXES)
    region = get(args.props, "region")
    if region is not None:
        problem = _region_problem(region, prefixes)
        if problem:
            report_violation(f"{problem}; set the resource's region input to an EU region or remove it.", None)
        return
    provider = args.provider
    if provider is None or provider.resource_type != "pulumi:providers:aws":
        cannot_check("the region of this AWS resource: it sets no region and the engine sent no AWS provider "
                     "with it")
    provider_region = get(provider.props, "region")
    if provider_region is not None:
        problem = _region_problem(provider_region, prefixes)
        if problem:
            report_violation(
                f"its provider '{provider.name}' has {problem}; use a provider pinned to an EU region.", None)


aws_resource_eu_region = resource_policy(
    name="aws-resource-eu-region",
    description="Checks that AWS resources are created in an EU region (their own region input, "
                "else their provider's).",
    controls=["RES-01", "BKP-02"],
    severity=Severity.HIGH,
    remediation="Give the resource an aws.Provider pinned to an eu-* region, and do not override "
                "region on the resource with a non-EU one.",
    validate=_validate_aws_resource,
    applies_to=lambda t: t.startswith("aws:"),
    config=_AWS_CONFIG,
)
