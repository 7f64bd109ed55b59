"""ACC-02 and TLS-02: nothing but the allowed ports is reachable from the internet.

One factory, :func:`no_public_ingress_except`, builds the firewall rule
policy; the same judgement (:func:`public_ingress_problems`) is reused by the
stack policy that follows a VPN-only server to the firewalls it uses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
)
from pulumi_policy.proxy import UnknownValueError

from ._meta import config_port, config_port_list, get, labels_of, resource_policy, stack_policy

FIREWALL = "hcloud:index/firewall:Firewall"
FIREWALL_ATTACHMENT = "hcloud:index/firewallAttachment:FirewallAttachment"
SERVER = "hcloud:index/server:Server"

DEFAULT_PUBLIC_TCP_PORTS = (80, 443)
DEFAULT_VPN_PORT = 51820
EXPOSURE_LABEL = "exposure"
VPN_ONLY = "vpn-only"

# Ranges that are not reachable from the internet. Anything else in a
# rule's sourceIps (0.0.0.0/0, ::/0, ::ffff:0:0/96, 0.0.0.0/1, a single
# public address...) makes the rule public.
_INTERNAL_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"))
_INTERNAL_V6 = tuple(ipaddress.IPv6Network(n) for n in ("::1/128", "fc00::/7", "fe80::/10"))
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_PORTLESS_OK = ("icmp",)


@dataclass(frozen=True)
class Allowance:
    """What may be opened to the internet."""

    tcp: tuple[int, ...]
    udp: tuple[int, ...]

    def describe(self) -> str:
        parts = [f"tcp {p}" for p in self.tcp] + [f"udp {p}" for p in self.udp]
        return ", ".join(parts) if parts else "nothing"


def _is_public_source(source: Any) -> tuple[bool, str | None]:
    """(public?, problem). An address that cannot be parsed counts as public."""
    if not isinstance(source, str):
        return True, f"source {source!r} is not an address"
    try:
        net = ipaddress.ip_network(source.strip(), strict=False)
    except ValueError:
        return True, f"source '{source}' is not a valid address or CIDR"
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_V4_MAPPED):
        mapped = ipaddress.ip_network(
            f"{ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)}/{max(net.prefixlen - 96, 0)}",
            strict=False)
        net = mapped
    if isinstance(net, ipaddress.IPv4Network):
        internal = any(net.subnet_of(n) for n in _INTERNAL_V4)
    else:
        internal = any(net.subnet_of(n) for n in _INTERNAL_V6)
    return not internal, None


def _port_range(port: Any) -> tuple[int, int] | None:
    """(low, high) of a rule's port; None when it cannot be read."""
    if isinstance(port, bool):
        return None
    if isinstance(port, (int, float)):
        return (int(port), int(port)) if float(port).is_integer() else None
    if not isinstance(port, str):
        return None
    text = port.strip().lower()
    if text == "any":
        return (1, 65535)
    low, sep, high = text.partition("-")
    try:
        lo = int(low.strip())
        hi = int(high.strip()) if sep else lo
    except ValueError:
        return None
    return (min(lo, hi), max(lo, hi))


def _describe_ports(lo: int, hi: int) -> str:
    if (lo, hi) == (1, 65535):
        return "all ports"
    return f"port {lo}" if lo == hi else f"ports {lo}-{hi}"


def _rule_problem(rule: Mapping[str, Any], allowance: Allowance) -> str | None:
    protocol = str(get(rule, "protocol", "")).strip().lower()
    if protocol in _PORTLESS_OK:
        return None
    if protocol not in ("tcp", "udp"):
        return f"opens protocol '{protocol or '(none)'}' to the internet"
    port = get(rule, "port")
    if port is None or (isinstance(port, str) and not port.strip()):
        return f"opens all {protocol} ports (no port given) to the internet"
    rng = _port_range(port)
    if rng is None:
        return f"has a {protocol} port '{port}' that cannot be read"
    allowed: set[int] = set(allowance.tcp if protocol == "tcp" else allowance.udp)
    lo, hi = rng
    if hi - lo + 1 > len(allowed) or any(p not in allowed for p in range(lo, hi + 1)):
        return f"opens {protocol} {_describe_ports(lo, hi)} to the internet"
    return None


def public_ingress_problems(rules: Any, allowance: Allowance) -> list[str]:
    """What is wrong with ``rules`` (a Firewall's ``rules`` input) for ``allowance``."""
    problems: list[str] = []
    if rules is None:
        return problems
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        return ["rules is not a list"]
    for i in range(len(rules)):
        rule = rules[i]
        if not isinstance(rule, Mapping):
            problems.append(f"rule {i} is not an object")
            continue
        if str(get(rule, "direction", "in")).strip().lower() == "out":
            continue
        sources = get(rule, "sourceIps", [])
        if isinstance(sources, str):
            sources = [sources]
        public_sources = []
        for j in range(len(sources)):
            public, problem = _is_public_source(sources[j])
            if problem:
                problems.append(f"rule {i}: {problem}")
            if public:
                public_sources.append(str(sources[j]))
        if not public_sources:
            continue
        problem = _rule_problem(rule, allowance)
        if problem:
            label = get(rule, "description")
            named = f" ('{label}')" if isinstance(label, str) and label else ""
            problems.append(f"inbound rule {i}{named} {problem} (sources {', '.join(public_sources)})")
    return problems


_CONFIG: dict[str, dict[str, Any]] = {
    "allowedPublicTcpPorts": {
        "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535},
        "default": list(DEFAULT_PUBLIC_TCP_PORTS),
        "description": "TCP ports a public client may open to the internet (HTTPS and the HTTP redirect).",
    },
    "vpnPort": {
        "type": "integer", "minimum": 1, "maximum": 65535, "default": DEFAULT_VPN_PORT,
        "description": "The WireGuard UDP port, the only port a VPN-only client opens.",
    },
}


def allowance_for(args: Any, vpn_only: bool) -> Allowance:
    vpn = config_port(args, "vpnPort", DEFAULT_VPN_PORT)
    tcp = () if vpn_only else tuple(config_port_list(args, "allowedPublicTcpPorts", DEFAULT_PUBLIC_TCP_PORTS))
    return Allowance(tcp=tcp, udp=(vpn,))


def _is_vpn_only(labels: Mapping[str, Any]) -> bool:
    try:
        value = labels[EXPOSURE_LABEL]
    except KeyError:
        return False
    return isinstance(value, str) and value.strip().lower() == VPN_ONLY


def no_public_ingress_except(*, name: str, description: str, controls: Sequence[str],
                             remediation: str, resource_type: str = FIREWALL) -> ResourceValidationPolicy:
    """The "no public ingress except the allowance" rule for one firewall resource type.

    The allowance comes from the policy config (allowedPublicTcpPorts,
    vpnPort); a firewall labelled ``exposure: vpn-only`` gets only the VPN port.
    """

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != resource_type:
            return
        vpn_only = _is_vpn_only(labels_of(args.props))
        allowance = allowance_for(args, vpn_only)
        scope = "a VPN-only firewall (label exposure: vpn-only)" if vpn_only else "the firewall"
        for problem in public_ingress_problems(get(args.props, "rules"), allowance):
            report_violation(
                f"{problem}; {scope} may open to the internet only {allowance.describe()} "
                "(icmp is fine). Restrict sourceIps to the VPN/private ranges or remove the rule.", None)

    return resource_policy(
        name=name, description=description, controls=controls, severity=Severity.CRITICAL,
        remediation=remediation, validate=validate, config=_CONFIG, applies_to=(resource_type,))


hcloud_firewall_public_ingress = no_public_ingress_except(
    name="hcloud-firewall-no-public-ingress-except-allowed",
    description="Checks that a Hetzner firewall opens to the internet only the allowed public TCP ports "
                "(80, 443) and the WireGuard UDP port, and only the WireGuard port when labelled "
                "exposure: vpn-only.",
    controls=["ACC-02", "TLS-02"],
    remediation="Keep SSH, database and admin ports off the internet: reach them through WireGuard. "
                "Inbound rules from public sources may open only tcp 80/443 (public sites) and udp <vpnPort>.",
)


def _validate_server_firewall(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    ids = get(args.props, "firewallIds", [])
    if not isinstance(ids, Sequence) or isinstance(ids, str) or len(ids) == 0:
        report_violation(
            "the server has no firewallIds, so its first boot runs without a cloud firewall (a later "
            "FirewallAttachment comes too late); attach a firewall through firewallIds.", None)


hcloud_server_firewall_attached = resource_policy(
    name="hcloud-server-firewall-attached",
    description="Checks that every Hetzner server is created with a cloud firewall (firewallIds).",
    controls=["ACC-02"],
    severity=Severity.HIGH,
    remediation="Pass the client's hcloud.Firewall ID in the server's firewallIds.",
    validate=_validate_server_firewall,
    applies_to=(SERVER,),
)


def _firewalls_of(server: Any, resources: Iterable[Any]) -> list[Any]:
    """Firewalls that protect ``server``: through its firewallIds, a FirewallAttachment or applyTos."""
    found = {r.urn: r for r in server.property_dependencies.get("firewallIds", []) if r.resource_type == FIREWALL}
    for r in resources:
        if r.resource_type == FIREWALL_ATTACHMENT:
            servers = [d.urn for d in r.property_dependencies.get("serverIds", [])]
            if server.urn in servers:
                for fw in r.property_dependencies.get("firewallId", []):
                    if fw.resource_type == FIREWALL:
                        found[fw.urn] = fw
        elif r.resource_type == FIREWALL and server.urn in [d.urn for d in r.property_dependencies.get("applyTos", [])]:
            found[r.urn] = r
    return list(found.values())


def _validate_vpn_only_servers(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    allowance = allowance_for(args, vpn_only=True)
    for server in args.resources:
        if server.resource_type != SERVER:
            continue
        try:
            if not _is_vpn_only(labels_of(server.props)):
                continue
        except UnknownValueError:
            continue
        for fw in _firewalls_of(server, args.resources):
            try:
                problems = public_ingress_problems(get(fw.props, "rules"), allowance)
            except UnknownValueError:
                report_violation(
                    f"firewall '{fw.name}' of VPN-only server '{server.name}' has rules that are unknown "
                    "at preview; render them from settings so they can be checked.", fw.urn)
                continue
            for problem in problems:
                report_violation(
                    f"server '{server.name}' is labelled exposure: vpn-only but its firewall '{fw.name}' "
                    f"{problem}; a VPN-only host may open only {allowance.describe()}. Remove the rule "
                    "or label the firewall exposure: vpn-only too.", fw.urn)


hcloud_vpn_only_server_firewalls = stack_policy(
    name="hcloud-server-vpn-only-firewalls",
    description="Checks that the firewalls protecting a server labelled exposure: vpn-only open only "
                "the WireGuard UDP port to the internet.",
    controls=["TLS-02", "ACC-02"],
    severity=Severity.CRITICAL,
    remediation="Label the VPN-only client's firewall exposure: vpn-only and keep only the udp <vpnPort> "
                "rule for public sources.",
    validate=_validate_vpn_only_servers,
    config=_CONFIG,
    scope="client",
)
