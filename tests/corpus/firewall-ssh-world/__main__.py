"""Generic case: a firewall rule that opens 22/tcp to ::/0 (ACC-02)."""
import pulumi_hcloud as hcloud

hcloud.Firewall("ssh-world", labels={"client": "corpus"}, rules=[
    hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0", "::/0"]),
])
