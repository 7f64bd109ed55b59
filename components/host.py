"""One client host: Hetzner server, its private network and its data volume.

What happens when the server must change (deliberate, see README):

* ``user_data`` changes replace the server. The host is configured once, at
  first boot; a changed configuration only takes effect on a new server, so
  drift is never hidden. Replacement is ``delete_before_replace`` (the
  server name is fixed and the volume attaches to one server at a time),
  with a graceful shutdown first, and the client data survives it because it
  lives on the separate, protected LUKS volume, which the new server opens
  with the same key from Vault.
* ``ssh_keys`` and ``image`` changes are ignored after creation: operator keys
  reach the host through the host bundle, whose hash user-data pins (so key
  rotation is a user-data change),
  and a newer image only matters for new servers; neither is worth an
  unplanned replacement.
* Hetzner delete/rebuild protection is on by default, so even a planned
  replacement needs the explicit, reviewed step ``serverProtection: false``
  first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_hcloud as hcloud

from components.hostconfig.cloud_config import HETZNER_USER_DATA_LIMIT
from components.settings import NETWORK_ZONE, SshKey


@dataclass(frozen=True, kw_only=True)
class HostArgs:
    """Arguments of :class:`Host`."""

    client_id: str
    """Names the server and volume in Hetzner."""
    location: str
    """Hetzner location of the server and volume (EU)."""
    server_type: str
    image: str
    ssh_keys: Sequence[SshKey]
    """Operator keys registered with Hetzner and given to the server at creation."""
    user_data: str
    """The rendered ``#cloud-config``: plain text, known at preview, no secret."""
    firewall_id: pulumi.Input[int]
    """Attached through ``firewall_ids`` so the first boot is already protected."""
    private_network: ipaddress.IPv4Network
    private_subnet: ipaddress.IPv4Network
    data_volume_gb: int
    server_protection: bool
    labels: Mapping[str, str]
    ready: Sequence[pulumi.Resource | None] = ()
    """What must exist before the server boots (its host bundle)."""
    primary_ipv4_id: pulumi.Input[int] | None = None
    """A pre-allocated primary IPv4 (:class:`components.address.HostAddress`): known before the
    server exists, kept across replacements; Vault binds the host's AppRoles to it."""

    def __post_init__(self) -> None:
        if not self.user_data.startswith("#cloud-config\n"):
            raise ValueError("user_data must be a #cloud-config document")
        size = len(self.user_data.encode())
        if size > HETZNER_USER_DATA_LIMIT:
            # Caught at preview: Hetzner would refuse the server at `pulumi up`.
            raise ValueError(
                f"the host's cloud-config is {size} bytes; Hetzner accepts at most {HETZNER_USER_DATA_LIMIT} "
                f"(32 KiB) of user_data. It holds the Vault fetcher and the coordinates in boot.json "
                f"(odoo-hosting:clientId, odoo-hosting:vaultAddress, odoo-hosting:adminUser, the backup region): "
                f"shorten those, or move a file from first_boot_files into the host bundle "
                f"(components/hostconfig/cloud_config.py).")
        if not self.ssh_keys:
            raise ValueError("a server needs at least one SSH key")
        if not self.private_subnet.subnet_of(self.private_network):
            raise ValueError("private_subnet must lie inside private_network")

    @property
    def private_ip(self) -> str:
        """The server's fixed address in its subnet (the first host address
        after the gateway Hetzner reserves)."""
        return str(self.private_subnet.network_address + 2)


class Host(pulumi.ComponentResource):
    """A hardened Hetzner server with its own network and encrypted-data volume."""

    server_id: pulumi.Output[str]
    ipv4_address: pulumi.Output[str]
    ipv6_address: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    volume_id: pulumi.Output[str]

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:host:Host", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = dict(args.labels)

        keys = [
            hcloud.SshKey(f"{name}-key-{key.name}", name=f"{args.client_id}-{key.name}",
                          public_key=key.public_key, labels=labels, opts=child)
            for key in args.ssh_keys
        ]

        network = hcloud.Network(f"{name}-network", name=f"{args.client_id}-network",
                                 ip_range=str(args.private_network), labels=labels, opts=child)
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet",
            network_id=network.id.apply(int),
            type="cloud",
            network_zone=NETWORK_ZONE,
            ip_range=str(args.private_subnet),
            opts=child,
        )

        server = hcloud.Server(
            f"{name}-server",
            name=args.client_id,
            server_type=args.server_type,
            image=args.image,
            location=args.location,
            ssh_keys=[k.name for k in keys],
            user_data=args.user_data,
            firewall_ids=[args.firewall_id],
            public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv4=args.primary_ipv4_id,
                                                    ipv6_enabled=True)],
            # Hetzner backups are unencrypted images of the root disk; client
            # data is not there and is backed up encrypted by restic instead.
            backups=False,
            shutdown_before_deletion=True,
            delete_protection=args.server_protection,
            rebuild_protection=args.server_protection,
            labels=labels,
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                ignore_changes=["sshKeys", "image"],
                depends_on=[r for r in args.ready if r is not None],
            ),
        )
        server_id = server.id.apply(int)

        # A separate ServerNetwork (not the server's inline `networks`, which
        # perma-diffs); it depends on the subnet through subnet_id.
        attachment = hcloud.ServerNetwork(
            f"{name}-private-nic",
            server_id=server_id,
            subnet_id=subnet.id,
            ip=args.private_ip,
            opts=child,
        )

        # Client data: formatted and opened by the host with LUKS (DSK-01), so
        # the provider neither formats nor mounts it; protected in Hetzner and
        # in Pulumi, and kept if it ever leaves the program (REL-01).
        volume = hcloud.Volume(
            f"{name}-data",
            name=f"{args.client_id}-data",
            size=args.data_volume_gb,
            location=args.location,
            automount=False,
            delete_protection=True,
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        hcloud.VolumeAttachment(
            f"{name}-data-attachment",
            server_id=server_id,
            volume_id=volume.id.apply(int),
            automount=False,
            opts=child,
        )

        self.server_id = server.id
        self.ipv4_address = server.ipv4_address
        self.ipv6_address = server.ipv6_address
        self.private_ip = attachment.ip
        self.volume_id = volume.id
        self.register_outputs({
            "server_id": self.server_id,
            "ipv4_address": self.ipv4_address,
            "ipv6_address": self.ipv6_address,
            "private_ip": self.private_ip,
            "volume_id": self.volume_id,
        })
