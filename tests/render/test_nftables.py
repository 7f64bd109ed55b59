"""ACC-02 / TLS-02: the host firewall, by content (tests/system loads and probes it)."""

from __future__ import annotations

import re

from components.hostconfig import render_nftables


def _rules(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_shebang_and_own_idempotent_table(settings):
    text = render_nftables(settings)
    assert text.startswith("#!/usr/sbin/nft -f\n")
    rules = _rules(text)
    assert "flush ruleset" not in rules
    assert rules.index("table inet odoo_hosting {}") < rules.index("delete table inet odoo_hosting") \
        < rules.index("table inet odoo_hosting {")


def test_input_policy_drop_and_no_forward_chain(settings):
    rules = _rules(render_nftables(settings))
    assert "type filter hook input priority filter; policy drop;" in rules
    assert not any("hook forward" in r or "chain forward" in r for r in rules)
    assert "ct state established,related accept" in rules
    assert "ct state invalid drop" in rules
    assert 'iifname "lo" accept' in rules
    assert "ip saddr { 172.31.1.1, %s } udp sport 67 udp dport 68 accept" % (
        settings.private_network.network_address + 1) in rules
    assert f"udp dport {settings.vpn.port} accept" in rules


def test_icmp_types(settings):
    text = render_nftables(settings)
    for icmp in ("echo-request", "destination-unreachable", "time-exceeded", "parameter-problem"):
        assert re.search(rf"icmp type {{[^}}]*\b{icmp}\b", text)
    for icmp6 in ("packet-too-big", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert"):
        assert re.search(rf"icmpv6 type {{[^}}]*\b{icmp6}\b", text)


def test_ssh_only_from_tunnel(settings):
    rules = _rules(render_nftables(settings))
    ssh = [r for r in rules if re.search(r"\bdport\b.*\b22\b", r)]
    assert ssh == [f'iifname "wg0" ip saddr {settings.vpn.subnet} tcp dport 22 accept']


def test_web_ports_only_when_public(public_settings, private_settings):
    public = _rules(render_nftables(public_settings))
    private = _rules(render_nftables(private_settings))
    assert "tcp dport { 80, 443 } accept" in public
    assert not any(re.search(r"\b(80|443)\b", r) for r in private)


def test_private_accepts_only_wireguard_from_outside(private_settings):
    accepts = [r for r in _rules(render_nftables(private_settings)) if r.endswith("accept")]
    port_rules = [r for r in accepts if "dport" in r]
    assert port_rules == ["ip saddr { 172.31.1.1, 10.20.0.1 } udp sport 67 udp dport 68 accept",
                          f"udp dport {private_settings.vpn.port} accept",
                          f'iifname "wg0" ip saddr {private_settings.vpn.subnet} tcp dport 22 accept']


def test_dhcp_replies_only_from_hetzners_dhcp_servers(settings):
    """Issue 16: `udp sport 67 udp dport 68 accept` let anything that sends from port 67 in."""
    dhcp = [r for r in _rules(render_nftables(settings)) if re.search(r"\bdport 68\b", r)]
    gateway = settings.private_network.network_address + 1
    assert dhcp == [f"ip saddr {{ 172.31.1.1, {gateway} }} udp sport 67 udp dport 68 accept"]
