"""The odoo-hosting CrossGuard policies, one module per area.

``ALL_POLICIES`` is the explicit list the pack runs; importing a module
registers nothing by itself.
"""

from .firewall import (
    hcloud_firewall_public_ingress,
    hcloud_server_firewall_attached,
    hcloud_vpn_only_server_firewalls,
)
from .labels import hcloud_client_label, pulumi_stack_single_client
from .location import aws_provider_eu_region, aws_resource_eu_region, hcloud_eu_location
from .ssh import hcloud_server_ssh_keys, hcloud_server_sshd_key_only
from .volume import (
    hcloud_server_protection_consistent,
    hcloud_volume_no_provider_format,
    hcloud_volume_protected,
)

ALL_POLICIES = [
    # RES-01 / BKP-02
    hcloud_eu_location,
    aws_provider_eu_region,
    aws_resource_eu_region,
    # ACC-01
    hcloud_server_ssh_keys,
    hcloud_server_sshd_key_only,
    # ACC-02 / TLS-02
    hcloud_firewall_public_ingress,
    hcloud_server_firewall_attached,
    hcloud_vpn_only_server_firewalls,
    # DSK-01
    hcloud_volume_no_provider_format,
    # REL-01
    hcloud_volume_protected,
    hcloud_server_protection_consistent,
    # ISO-01
    hcloud_client_label,
    pulumi_stack_single_client,
]

__all__ = ["ALL_POLICIES"]
