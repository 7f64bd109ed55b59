"""ACC-02 (baseline): no admin or database port reachable from the internet, whichever resource opens it.

The Hetzner cloud firewall is judged in ``firewall``; this module judges the
other routes to the same effect in the providers the pack covers:

- AWS security groups: inline ``ingress`` blocks of ``ec2.SecurityGroup``,
  ``ec2.SecurityGroupRule`` (type ``ingress``) and
  ``vpc.SecurityGroupIngressRule``, open to ``0.0.0.0/0`` or ``::/0`` (any
  ``/0``) on a port range or protocol (``-1``/``all``) that covers an admin
  port;
- Hetzner load balancers: a ``LoadBalancerService`` that listens on, or
  forwards to, an admin port, unless a ``LoadBalancerNetwork`` of the same
  load balancer sets ``enablePublicInterface: false`` (a stack policy, so
  it sees both).

The admin ports are ``_meta.ADMIN_PORTS``, tunable with ``adminPorts``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from ._meta import ADMIN_PORTS, as_list, as_number, config_port_list, get, resource_policy, stack_policy

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LB_SERVICE = "hcloud:index/loadBalancerService:LoadBalancerService"
LB_NETWORK = "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork"

_CONFIG = {
    "adminPorts": {
        "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535},
        "default": sorted(ADMIN_PORTS),
        "description": "Ports no resource may open to the internet (SSH, databases, admin consoles).",
    },
}


def _admin_ports(args: Any) -> frozenset[int]:
    return frozenset(config_port_list(args, "adminPorts", sorted(ADMIN_PORTS)))


def is_internet(cidr: Any) -> bool:
    """A CIDR covering the whole internet (any /0), e.g. 0.0.0.0/0, ::/0."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _covered(protocol: Any, from_port: Any, to_port: Any, admin: frozenset[int]) -> list[int]:
    proto = str(protocol if protocol is not None else "tcp").strip().lower()
    if proto in ("-1", "all"):
        return sorted(admin)
    if proto not in ("tcp", "udp", "6", "17"):
        return []
    low, high = as_number(from_port), as_number(to_port)
    if low is None and high is None:
        return []
    low = low if low is not None else high
    high = high if high is not None else low
    assert low is not None and high is not None
    return sorted(p for p in admin if low <= p <= high)


def _open_rule(where: str, rule: Mapping[str, Any], cidrs: Iterable[Any], admin: frozenset[int],
               protocol_key: str = "protocol") -> str | None:
    world = sorted({str(c) for c in cidrs if is_internet(c)})
    if not world:
        return None
    ports = _covered(get(rule, protocol_key), get(rule, "fromPort"), get(rule, "toPort"), admin)
    if not ports:
        return None
    shown_ports = ", ".join(map(str, ports[:8])) + (", ..." if len(ports) > 8 else "")
    return (f"{where} opens admin/database port(s) {shown_ports} to {', '.join(world)}; allow only the "
            "addresses that need them (a VPN or bastion CIDR) or a source security group")


def security_group_problems(resource_type: str, props: Mapping[str, Any], admin: frozenset[int]) -> list[str]:
    problems: list[str] = []
    if resource_type == SECURITY_GROUP:
        for i, rule in enumerate(as_list(get(props, "ingress"))):
            if isinstance(rule, Mapping):
                cidrs = as_list(get(rule, "cidrBlocks")) + as_list(get(rule, "ipv6CidrBlocks"))
                problem = _open_rule(f"ingress[{i}]", rule, cidrs, admin)
                problems += [problem] if problem else []
    elif resource_type == SECURITY_GROUP_RULE:
        if str(get(props, "type", "")).strip().lower() == "ingress":
            cidrs = as_list(get(props, "cidrBlocks")) + as_list(get(props, "ipv6CidrBlocks"))
            problem = _open_rule("the ingress rule", props, cidrs, admin)
            problems += [problem] if problem else []
    elif resource_type == INGRESS_RULE:
        problem = _open_rule("the ingress rule", props, [get(props, "cidrIpv4"), get(props, "cidrIpv6")], admin,
                             protocol_key="ipProtocol")
        problems += [problem] if problem else []
    return problems


def _validate_security_group(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in security_group_problems(args.resource_type, args.props, _admin_ports(args)):
        report_violation(f"{problem}.", None)


aws_security_group_no_admin_ingress = resource_policy(
    name="aws-security-group-no-public-admin-ingress",
    description="Checks that no AWS security group ingress (inline, SecurityGroupRule or "
                "vpc.SecurityGroupIngressRule) opens an admin or database port to 0.0.0.0/0 or ::/0.",
    controls=["ACC-02"],
    severity=Severity.CRITICAL,
    remediation="Restrict cidr_blocks / cidr_ipv4 of rules covering SSH, database and admin ports to the VPN or "
                "bastion range, or use referenced_security_group_id; the adminPorts setting lists the ports.",
    validate=_validate_security_group,
    applies_to=(SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE),
    config=_CONFIG,
)


_LB_DEFAULT_PORT = {"http": 80, "https": 443}


def load_balancer_service_problems(props: Mapping[str, Any], admin: frozenset[int]) -> list[str]:
    protocol = str(get(props, "protocol", "tcp")).strip().lower()
    listen = as_number(get(props, "listenPort")) or _LB_DEFAULT_PORT.get(protocol)
    destination = as_number(get(props, "destinationPort")) or listen
    problems = []
    if listen is not None and int(listen) in admin:
        problems.append(f"the load balancer listens on admin/database port {int(listen)} on its public "
                        "interface; listen on 80/443 only")
    elif destination is not None and int(destination) in admin:
        problems.append(f"the load balancer forwards port {int(listen or 0)} to admin/database port "
                        f"{int(destination)} on its targets, which puts that port on the internet; forward only "
                        "to the web port")
    return problems


def _lb_urns(resource: Any) -> set[str]:
    return {d.urn for d in (resource.property_dependencies or {}).get("loadBalancerId", [])}


def _private_lbs(resources: list[Any]) -> set[str]:
    """Load balancers whose network attachment turns the public interface off."""
    private: set[str] = set()
    for r in resources:
        if r.resource_type != LB_NETWORK:
            continue
        try:
            off = get(r.props, "enablePublicInterface", True) is False
        except UnknownValueError:
            off = False
        if off:
            private |= _lb_urns(r)
    return private


def _validate_lb_services(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    admin = _admin_ports(args)
    private = _private_lbs(args.resources)
    for service in (r for r in args.resources if r.resource_type == LB_SERVICE):
        lbs = _lb_urns(service)
        if lbs and lbs <= private:
            continue
        for problem in load_balancer_service_problems(service.props, admin):
            report_violation(f"'{service.name}': {problem}.", service.urn)


hcloud_load_balancer_no_admin_service = stack_policy(
    name="hcloud-load-balancer-no-admin-service",
    description="Checks that no Hetzner load balancer service listens on or forwards to an admin or database "
                "port, unless the load balancer's network attachment turns its public interface off.",
    controls=["ACC-02"],
    severity=Severity.CRITICAL,
    remediation="Give hcloud.LoadBalancerService only web listen/destination ports (80/443); reach SSH and "
                "databases through the VPN (or attach the load balancer with enable_public_interface=False).",
    validate=_validate_lb_services,
    applies_to=(LB_SERVICE,),
    config=_CONFIG,
)
