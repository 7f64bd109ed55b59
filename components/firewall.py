"""The client's Hetzner cloud firewall (ACC-02, TLS-02).

Inbound, only HTTPS (and HTTP, which the proxy answers with a redirect) for
public clients, and the WireGuard UDP port for everyone. SSH, PostgreSQL and
Odoo's own ports are never open to the internet: SSH is reached through the
VPN, the rest only inside the host. Outbound is left open (Hetzner's default
when no outbound rule exists): the host fetches updates, ACME certificates
and talks to Vault and the backup bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_hcloud as hcloud

WORLD = ("0.0.0.0/0", "::/0")


class FirewallRule(TypedDict):
    """One rule as plain data: the keyword arguments of ``hcloud.FirewallRuleArgs``, so that
    mypy checks each of them against the provider's signature."""

    direction: str
    protocol: str
    port: str
    source_ips: list[str]
    description: str


def firewall_rules(*, public: bool, vpn_port: int) -> list[FirewallRule]:
    """The inbound rules, as plain data (tested without Pulumi)."""
    rules = [FirewallRule(direction="in", protocol="udp", port=str(vpn_port), source_ips=list(WORLD),
                          description="WireGuard VPN (SSH and maintenance go through it)")]
    if public:
        rules += [
            FirewallRule(direction="in", protocol="tcp", port="443", source_ips=list(WORLD), description="HTTPS"),
            FirewallRule(direction="in", protocol="tcp", port="80", source_ips=list(WORLD),
                         description="HTTP, answered only with a redirect to HTTPS"),
        ]
    return rules


@dataclass(frozen=True, kw_only=True)
class ClientFirewallArgs:
    """Arguments of :class:`ClientFirewall`."""

    client_id: str
    """The client; names the firewall in Hetzner."""
    public: bool
    """Whether HTTPS is served to the internet."""
    vpn_port: int
    """The WireGuard UDP port."""
    labels: Mapping[str, str]
    """Labels carried by the firewall (ISO-01)."""


class ClientFirewall(pulumi.ComponentResource):
    """A Hetzner firewall that opens nothing but HTTPS and WireGuard."""

    firewall_id: pulumi.Output[int]

    def __init__(self, name: str, args: ClientFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:network:ClientFirewall", name, None, opts)
        firewall = hcloud.Firewall(
            f"{name}-rules",
            name=f"{args.client_id}-firewall",
            labels=dict(args.labels),
            rules=[hcloud.FirewallRuleArgs(**rule)
                   for rule in firewall_rules(public=args.public, vpn_port=args.vpn_port)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.firewall_id = firewall.id.apply(int)
        self.register_outputs({"firewall_id": self.firewall_id})
