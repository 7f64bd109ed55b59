"""Computed outputs of resources being created, used as programs use them."""

import pulumi
import pulumi_hcloud as hcloud

config = pulumi.Config()
ip = hcloud.PrimaryIp("admin-ip", type="ipv4", location="fsn1", assignee_type="server", auto_delete=False)
server = hcloud.Server("web", server_type="cx22", image="debian-12", location="fsn1")

# Each of these raised TypeError when computed outputs came back as None.
endpoint = server.ipv4_address.apply(lambda address: "https://" + address + "/v1")
url = pulumi.Output.concat("http://", server.ipv4_address, ":8069")
first_label = server.labels.apply(lambda labels: (labels or {}).get("role", "none"))
network_zone = server.ipv6_network.apply(lambda net: net.split("/")[0])

if not pulumi.runtime.is_dry_run():
    # The deploy path: a preview never takes it.
    hcloud.Firewall("deploy-only", rules=[])

source = (
    [ip.ip_address.apply(lambda a: f"{a}/32")]
    if config.get_bool("sshFromComputedAddress")
    else ["192.0.2.10/32"]
)
hcloud.Firewall(
    "admin-ssh",
    rules=[hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=source)],
    apply_tos=[hcloud.FirewallApplyToArgs(server=server.id.apply(int))],
)
pulumi.export("endpoint", endpoint)
pulumi.export("url", url)
pulumi.export("dryRun", pulumi.runtime.is_dry_run())
