"""ACC-02 / TLS-02: the rendered ruleset, loaded by nft into a namespace and probed.

Topology (all inside namespaces this module makes):

    internet ns  192.0.2.2, 2001:db8:2::2  --eth0-- host ns (ruleset loaded) 192.0.2.1, 2001:db8:2::1
    vpn ns       <peer address>, 10.99.0.5 --wg0--- host ns <vpn host address>

``wg0`` here is a veth named like the tunnel (the real tunnel is in
test_wireguard.py): the rules match on the interface name and source subnet.
Listeners in the host namespace answer on every port probed (TCP 22, 80, 443,
5432, 8069; UDP echo on the WireGuard port), so "dropped" is the firewall's
doing. The same probes are run on weakened rulesets and must catch them.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.hostconfig import NFTABLES_PATH, render_host
from tests.conftest import example_settings, require_tool

from .helpers import Namespaces, listen, materialise, probe_many, staged

HOST4, OUTSIDE4 = "192.0.2.1", "192.0.2.2"
HOST6, OUTSIDE6 = "2001:db8:2::1", "2001:db8:2::2"
STRANGER_ON_WG0 = "10.99.0.5"  # on the tunnel interface, but not in the VPN subnet
TCP_PORTS = (22, 80, 443, 5432, 8069)


def expected(settings) -> dict[str, str]:
    """ACC-02/TLS-02 as probe outcomes: what each source may reach."""
    web = "open" if settings.public else "dropped"
    wg = f"udp/{settings.vpn.port}"
    outside = {"tcp/22": "dropped", "tcp/80": web, "tcp/443": web, "tcp/5432": "dropped",
               "tcp/8069": "dropped", wg: "open"}
    return {
        **{f"internet4 {k}": v for k, v in outside.items()},
        **{f"internet6 {k}": v for k, v in outside.items()},
        "vpn tcp/22": "open", "vpn tcp/5432": "dropped", "vpn tcp/8069": "dropped",
        "wg0-stranger tcp/22": "dropped",
    }


class Firewall:
    """The topology above, with listeners; load() a ruleset, observe() what gets through."""

    def __init__(self, settings) -> None:
        require_tool("nft")
        self.settings = settings
        self.ns = Namespaces()
        try:
            self.host = self.ns.add("fw")
            self.internet = self.ns.add("inet")
            self.vpn = self.ns.add("vpn")
            vpn = settings.vpn
            self.ns.veth(self.host, "eth0", [f"{HOST4}/24", f"{HOST6}/64"],
                         self.internet, "eth0", [f"{OUTSIDE4}/24", f"{OUTSIDE6}/64"])
            self.ns.veth(self.host, "wg0", [f"{vpn.host_address}/{vpn.subnet.prefixlen}"],
                         self.vpn, "peer0", [f"{vpn.peers[0].address}/{vpn.subnet.prefixlen}",
                                             f"{STRANGER_ON_WG0}/32"])
            self.ns.run(self.host, "ip", "route", "add", STRANGER_ON_WG0, "dev", "wg0")
            listen(self.ns, self.host, "::", tcp=TCP_PORTS, udp=[vpn.port])
        except BaseException:
            self.ns.close()
            raise

    def load(self, ruleset: str) -> None:
        """Replace our table (the file itself does table {}; delete table; table {...})."""
        self.ns.run(self.host, "nft", "-f", "-", input=ruleset)

    def observe(self) -> dict[str, str]:
        vpn = self.settings.vpn
        outside = [f"tcp/{p}" for p in TCP_PORTS] + [f"udp/{vpn.port}"]
        from_internet = [("internet4", OUTSIDE4, HOST4, outside), ("internet6", OUTSIDE6, HOST6, outside)]
        from_vpn = [("vpn", str(vpn.peers[0].address), str(vpn.host_address), ["tcp/22", "tcp/5432", "tcp/8069"]),
                    ("wg0-stranger", STRANGER_ON_WG0, str(vpn.host_address), ["tcp/22"])]
        with ThreadPoolExecutor(2) as pool:
            results = pool.map(lambda job: probe_many(self.ns, *job),
                               [(self.internet, from_internet), (self.vpn, from_vpn)])
            return {k: v for result in results for k, v in result.items()}


def violations(seen: dict[str, str], settings) -> dict[str, tuple[str, str]]:
    """Every probe whose outcome breaks ACC-02/TLS-02: {probe: (seen, promised)}."""
    return {k: (seen.get(k), v) for k, v in expected(settings).items() if seen.get(k) != v}


@pytest.fixture(scope="module")
def firewalls(tmp_path_factory):
    """One probed topology per stack, built on first use, closed at module end."""
    built: dict[str, Firewall] = {}

    def get(stack: str) -> Firewall:
        if stack not in built:
            settings = example_settings(stack)
            root = materialise(render_host(settings), tmp_path_factory.mktemp("fw") / "root")
            built[stack] = Firewall(settings)
            built[stack].rendered = staged(root, NFTABLES_PATH).read_text()
        return built[stack]

    try:
        yield get
    finally:
        for fw in built.values():
            fw.ns.close()


@pytest.fixture(params=["example-public", "example-private"])
def firewall(request, firewalls):
    return firewalls(request.param)


def test_acc02_nft_check_accepts_materialised_ruleset(staging_root, netns):
    nft = require_tool("nft")
    ns = netns.add("nftc")
    path = staged(staging_root, NFTABLES_PATH)
    result = netns.run(ns, nft, "-c", "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr


def test_acc02_ruleset_reloads_without_touching_other_tables(staging_root, netns):
    """A reload (systemctl reload nftables) replaces our table and keeps Docker's/fail2ban's."""
    nft = require_tool("nft")
    ns = netns.add("nftr")
    path = str(staged(staging_root, NFTABLES_PATH))
    netns.run(ns, nft, "add", "table", "inet", "docker_like")
    netns.run(ns, nft, "-f", path)
    netns.run(ns, nft, "-f", path)
    tables = netns.run(ns, nft, "list", "tables").stdout
    assert "table inet docker_like" in tables and "table inet odoo_hosting" in tables
    assert "policy drop" in netns.run(ns, nft, "list", "table", "inet", "odoo_hosting").stdout


def test_acc02_tls02_live_probes_match_the_promises(firewall):
    """Public: 80/443 and the WireGuard port from outside; VPN-only: only the WireGuard
    port. SSH only from the VPN subnet on wg0; 5432/8069 never; IPv4 and IPv6."""
    firewall.load(firewall.rendered)
    seen = firewall.observe()
    assert violations(seen, firewall.settings) == {}


def test_acc02_without_ruleset_the_probes_see_open_ports(firewall):
    """Control: with no ruleset every listener answers, so "dropped" above is the firewall."""
    firewall.load("table inet odoo_hosting {}\ndelete table inet odoo_hosting\n")
    seen = firewall.observe()
    assert set(seen.values()) == {"open"}, seen


def _weaken(ruleset: str, how: str, settings) -> str:
    ssh_rule = f'iifname "wg0" ip saddr {settings.vpn.subnet} tcp dport 22 accept'
    assert ssh_rule in ruleset
    drop_policy = "policy drop;"
    assert drop_policy in ruleset
    if how == "policy-accept":
        return ruleset.replace(drop_policy, "policy accept;")
    if how == "ssh-from-anywhere":
        return ruleset.replace(ssh_rule, "tcp dport 22 accept")
    if how == "ssh-any-source-on-wg0":
        return ruleset.replace(ssh_rule, 'iifname "wg0" tcp dport 22 accept')
    if how == "database-port-open":
        return ruleset.replace(ssh_rule, ssh_rule + "\n        tcp dport { 5432, 8069 } accept")
    if how == "wireguard-port-closed":
        return re.sub(r"\n\s*udp dport \d+ accept", "", ruleset)
    if how == "web-open-on-vpn-only":
        assert not settings.public
        return ruleset.replace(ssh_rule, ssh_rule + "\n        tcp dport { 80, 443 } accept")
    if how == "web-closed-on-public":
        assert settings.public
        return ruleset.replace("tcp dport { 80, 443 } accept", "")
    raise ValueError(how)


WEAKENINGS = ["policy-accept", "ssh-from-anywhere", "ssh-any-source-on-wg0", "database-port-open",
              "wireguard-port-closed"]


@pytest.mark.parametrize("stack,how", [(stack, how) for stack in ("example-public", "example-private")
                                       for how in WEAKENINGS]
                         + [("example-public", "web-closed-on-public"), ("example-private", "web-open-on-vpn-only")])
def test_acc02_tls02_probes_catch_a_weakened_ruleset(firewalls, stack, how):
    firewall = firewalls(stack)
    weakened = _weaken(firewall.rendered, how, firewall.settings)
    firewall.load(weakened)
    try:
        broken = violations(firewall.observe(), firewall.settings)
    finally:
        firewall.load(firewall.rendered)
    assert broken, f"the probes did not notice the {how} ruleset"


# ---- DHCP: replies only from Hetzner's DHCP servers ----------------------------------------------

_DHCP_REPLY = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 67))
s.settimeout(1.0)
s.sendto(b"probe", (sys.argv[2], 68))
try:
    print("open" if s.recv(2048) == b"echo:probe" else "odd")
except socket.timeout:
    print("dropped")
"""
OLD_DHCP_RULE = "udp sport 67 udp dport 68 accept"
"""The rule before issue 16: anything that sent from port 67 reached port 68."""


def test_dhcp_replies_are_accepted_only_from_hetzners_dhcp_servers():
    import sys

    from components.hostconfig.nftables import dhcp_servers, render_nftables
    settings = example_settings("example-private")
    servers = dhcp_servers(settings)
    stranger = "192.0.2.77"
    ns = Namespaces()
    try:
        host, lan = ns.add("dhcp"), ns.add("lan")
        ns.veth(host, "eth0", [f"{HOST4}/24"], lan, "eth0", [f"{OUTSIDE4}/24", f"{stranger}/32",
                                                             *(f"{a}/32" for a in servers)])
        for address in (stranger, *servers):
            ns.run(host, "ip", "route", "add", address, "dev", "eth0")
        listen(ns, host, "0.0.0.0", udp=[68])

        def seen() -> dict[str, str]:
            return {source: ns.run(lan, sys.executable, "-c", _DHCP_REPLY, source, HOST4).stdout.strip()
                    for source in (*servers, stranger)}
        without = seen()
        rendered = render_nftables(settings)
        ns.run(host, "nft", "-f", "-", input=rendered)
        with_rules = seen()
        (line,) = [r.strip() for r in rendered.splitlines() if "dport 68" in r]
        ns.run(host, "nft", "-f", "-", input=rendered.replace(line, OLD_DHCP_RULE))
        with_old_rule = seen()
    finally:
        ns.close()
    assert set(without.values()) == {"open"}, without  # the probe can see a reply at all
    assert with_rules == {**{s: "open" for s in servers}, stranger: "dropped"}, with_rules
    assert with_old_rule[stranger] == "open"  # what the old rule let in, and this test catches
