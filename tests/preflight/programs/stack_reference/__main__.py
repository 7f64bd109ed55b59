"""Another stack's outputs feed this stack's resources."""

import pulumi
import pulumi_hcloud as hcloud

config = pulumi.Config()
network = pulumi.StackReference("acme/network/prod")
sources = network.require_output("sshSources")
hcloud.Firewall(
    "ssh",
    rules=[hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=sources)],
    labels={"network": network.get_output("networkId").apply(str)},
)
hcloud.Network("extra", ip_range="10.2.0.0/16", labels={"token": network.get_output("apiToken")})
extra = config.get("alsoRead")
if extra:
    hcloud.Network("more", ip_range="10.3.0.0/16", labels={"x": network.get_output(extra).apply(str)})
