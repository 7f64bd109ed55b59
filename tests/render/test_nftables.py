"""ACC-02 / TLS-02: the host firewall, by content and by nft itself."""

from __future__ import annotations

import re
import subprocess

from components.hostconfig import render_nftables
from tests.conftest import require_tool


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
    assert "udp sport 67 udp dport 68 accept" in rules
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
    assert port_rules == ["udp sport 67 udp dport 68 accept",
                          f"udp dport {private_settings.vpn.port} accept",
                          f'iifname "wg0" ip saddr {private_settings.vpn.subnet} tcp dport 22 accept']


def test_nft_accepts_ruleset_twice(settings, tmp_path):
    nft = require_tool("nft")
    unshare = require_tool("unshare")
    path = tmp_path / "nftables.conf"
    path.write_text(render_nftables(settings))
    # Load it twice in a private network namespace: the reload must work (no
    # "table exists" error) and must leave other tables alone.
    script = (f"{nft} add table inet docker_like && {nft} -f {path} && {nft} -f {path} && "
              f"{nft} list tables && {nft} list table inet odoo_hosting")
    result = subprocess.run([unshare, "-rn", "sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "table inet docker_like" in result.stdout
    assert "policy drop" in result.stdout
    check = subprocess.run([unshare, "-rn", nft, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


PROBE = r"""
set -e
rules=$1 host=$2 peer=$3 prefix=$4 python=$5
mount -t tmpfs tmpfs /run
ip link set lo up
# "internet": a client on eth0; "vpn": an operator on wg0 (a veth named wg0).
ip netns add internet
ip link add eth0 type veth peer name peer0 netns internet
ip addr add 192.0.2.1/24 dev eth0
ip link set eth0 up
ip -n internet addr add 192.0.2.2/24 dev peer0
ip -n internet link set peer0 up
ip netns add vpn
ip link add wg0 type veth peer name peer1 netns vpn
ip addr add "$host/$prefix" dev wg0
ip link set wg0 up
ip -n vpn addr add "$peer/$prefix" dev peer1
ip -n vpn link set peer1 up
nft -f "$rules"
"$python" -c '
import socket, time
held = []
for port in (22, 80, 443, 5432, 8069):
    s = socket.socket()
    s.bind(("0.0.0.0", port))
    s.listen(8)
    held.append(s)
time.sleep(30)
' &
listener=$!
trap 'kill $listener' EXIT
sleep 0.15
probe() {
    if ip netns exec "$1" timeout 0.3 bash -c "echo > /dev/tcp/$2/$3" 2>/dev/null; then
        echo "$1:$3=open"
    else
        echo "$1:$3=closed"
    fi
}
for port in 22 80 443 5432 8069; do probe internet 192.0.2.1 "$port"; done
probe vpn "$host" 22
probe vpn "$host" 5432
"""


def test_live_ruleset_in_network_namespace(settings, tmp_path):
    """Load the ruleset into a private namespace and connect from outside and from wg0."""
    import sys

    unshare = require_tool("unshare")
    require_tool("nft")
    require_tool("ip")
    rules = tmp_path / "nftables.conf"
    rules.write_text(render_nftables(settings))
    peer = settings.vpn.peers[0].address
    result = subprocess.run(
        [unshare, "-rnm", "bash", "-c", PROBE, "probe", str(rules), str(settings.vpn.host_address), str(peer),
         str(settings.vpn.subnet.prefixlen), sys.executable],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=") for line in result.stdout.split())
    web = "open" if settings.public else "closed"
    assert seen == {
        "internet:22": "closed", "internet:80": web, "internet:443": web,
        "internet:5432": "closed", "internet:8069": "closed",
        "vpn:22": "open", "vpn:5432": "closed",
    }
