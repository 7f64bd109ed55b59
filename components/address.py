"""The host's public IPv4, allocated before the server (SEC-02).

Hetzner offers no instance identity document, so the host's address is what
Vault can bind its AppRoles to. A primary IP exists before the server, so
its address is known when the AppRoles are written, and it outlives a server
replacement (``auto_delete`` off), so the bindings stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_hcloud as hcloud


@dataclass(frozen=True, kw_only=True)
class HostAddressArgs:
    """Arguments of :class:`HostAddress`."""

    client_id: str
    """Names the primary IP in Hetzner."""
    location: str
    """Hetzner location; must be the server's."""
    protection: bool
    """Hetzner delete protection (follows the server's protection setting)."""
    labels: Mapping[str, str]
    """The client's labels (ISO-01)."""


class HostAddress(pulumi.ComponentResource):
    """A primary IPv4 for the client's host."""

    ipv4_id: pulumi.Output[int]
    ipv4_address: pulumi.Output[str]

    def __init__(self, name: str, args: HostAddressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:host:HostAddress", name, None, opts)
        ip = hcloud.PrimaryIp(
            f"{name}-ipv4",
            name=f"{args.client_id}-ipv4",
            type="ipv4",
            assignee_type="server",
            location=args.location,
            # Survives a server replacement: the Vault bindings name this address.
            auto_delete=False,
            delete_protection=args.protection,
            labels=dict(args.labels),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ipv4_id = ip.id.apply(int)
        self.ipv4_address = ip.ip_address
        self.register_outputs({"ipv4_id": self.ipv4_id, "ipv4_address": self.ipv4_address})
