"""ClientStack: the isolation boundary of one client (ISO-01).

One Pulumi stack builds one ClientStack. Everything a client has (server,
private network, firewall, data volume, keys, secrets) is a child of it,
named after the client and labelled with the client id, and nothing in it
refers to another client's resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.boot_secrets import BootSecrets, BootSecretsArgs
from components.firewall import ClientFirewall, ClientFirewallArgs
from components.host import Host, HostArgs
from components.hostconfig import render_cloud_config
from components.settings import Settings
from components.vpn import WireGuardHostKey, WireGuardHostKeyArgs


@dataclass(frozen=True, kw_only=True)
class ClientStackArgs:
    """Arguments of :class:`ClientStack`."""

    settings: Settings
    """The validated stack settings; the only input."""


class ClientStack(pulumi.ComponentResource):
    """One client's isolated, hardened Odoo host."""

    ipv4_address: pulumi.Output[str]
    ipv6_address: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    vpn_endpoint: pulumi.Output[str]
    vpn_host_public_key: pulumi.Output[Optional[str]]
    vpn_host_address: pulumi.Output[str]
    data_volume_id: pulumi.Output[str]
    boot_secrets_path: pulumi.Output[str]

    def __init__(self, name: str, args: ClientStackArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("odoo-hosting:client:ClientStack", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        firewall = ClientFirewall(
            f"{name}-firewall",
            ClientFirewallArgs(client_id=s.client_id, public=s.public, vpn_port=s.vpn.port, labels=s.labels),
            opts=child,
        )
        vpn_key = WireGuardHostKey(f"{name}-vpn", WireGuardHostKeyArgs(client_id=s.client_id), opts=child)
        secrets = BootSecrets(
            f"{name}-boot-secrets",
            BootSecretsArgs(client_id=s.client_id, wireguard_private_key=vpn_key.private_key),
            opts=child,
        )
        host = Host(
            f"{name}-host",
            HostArgs(
                client_id=s.client_id,
                location=s.location,
                server_type=s.server_type,
                image=s.image,
                ssh_keys=s.ssh_keys,
                user_data=render_cloud_config(s),
                firewall_id=firewall.firewall_id,
                private_network=s.private_network,
                private_subnet=s.private_subnet,
                data_volume_gb=s.data_volume_gb,
                server_protection=s.server_protection,
                labels=s.labels,
            ),
            opts=child,
        )

        self.ipv4_address = host.ipv4_address
        self.ipv6_address = host.ipv6_address
        self.private_ip = host.private_ip
        self.vpn_endpoint = host.ipv4_address.apply(lambda ip: f"{ip}:{s.vpn.port}")
        self.vpn_host_public_key = vpn_key.public_key
        self.vpn_host_address = pulumi.Output.from_input(str(s.vpn.host_address))
        self.data_volume_id = host.volume_id
        self.boot_secrets_path = pulumi.Output.concat(secrets.kv_mount, "/", secrets.kv_path)
        self.register_outputs({
            "ipv4_address": self.ipv4_address,
            "ipv6_address": self.ipv6_address,
            "private_ip": self.private_ip,
            "vpn_endpoint": self.vpn_endpoint,
            "vpn_host_public_key": self.vpn_host_public_key,
            "vpn_host_address": self.vpn_host_address,
            "data_volume_id": self.data_volume_id,
            "boot_secrets_path": self.boot_secrets_path,
        })
