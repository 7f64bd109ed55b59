"""Host firewall (ACC-02, TLS-02)."""

from __future__ import annotations

from components.settings import Settings

from .paths import NFTABLES_PATH, NFTABLES_TABLE, WIREGUARD_INTERFACE

ICMP_TYPES = ("echo-request", "destination-unreachable", "time-exceeded", "parameter-problem")
# Neighbour discovery and router advertisements keep IPv6 working at all;
# packet-too-big keeps path-MTU discovery working.
ICMPV6_TYPES = (
    "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
    "echo-request", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert",
)
PUBLIC_TCP_PORTS = (80, 443)
SSH_PORT = 22
HETZNER_PUBLIC_GATEWAY = "172.31.1.1"
"""The gateway and DHCP server of every Hetzner Cloud server's public IPv4 (a /32 behind it)."""


def dhcp_servers(settings: Settings) -> tuple[str, ...]:
    """Who may answer DHCPv4: Hetzner's public gateway, and the private network's gateway (its first
    address), which serves the private interface's lease."""
    return (HETZNER_PUBLIC_GATEWAY, str(settings.private_network.network_address + 1))


def render_nftables(settings: Settings) -> str:
    vpn = settings.vpn
    table = f"inet {NFTABLES_TABLE}"
    if settings.public:
        web = [
            "        # Public site: the TLS proxy (ACC-02, TLS-01).",
            f"        tcp dport {{ {', '.join(str(p) for p in PUBLIC_TCP_PORTS)} }} accept",
        ]
    else:
        web = [
            "        # VPN-only client (TLS-02): no web port from the internet; Odoo is",
            "        # reached through the tunnel only.",
        ]
    lines = [
        "#!/usr/sbin/nft -f",
        f"# {NFTABLES_PATH}: managed by odoo-hosting (ACC-02, TLS-02).",
        "#",
        "# No `flush ruleset`: it would also wipe Docker's and fail2ban's tables",
        "# whenever this file is reloaded. Only our own table is replaced; the",
        "# empty declaration makes the delete succeed on the very first load.",
        "#",
        "# No forward chain: Docker owns forwarding to containers (its own tables).",
        "# Ports published by Docker are DNATed in prerouting and never reach this",
        "# input chain, so only the TLS proxy may publish ports (ISO-02), and on a",
        "# VPN-only host it must publish on the tunnel address only.",
        "# fail2ban's Odoo jail therefore bans in prerouting (see jail.d).",
        f"table {table} {{}}",
        f"delete table {table}",
        "",
        f"table {table} {{",
        "    chain input {",
        "        type filter hook input priority filter; policy drop;",
        "",
        "        ct state established,related accept",
        "        ct state invalid drop",
        '        iifname "lo" accept',
        "",
        # icmp/icmpv6 type matches imply the protocol, so no /etc/protocols
        # name lookup is needed (minimal images lack netbase).
        f"        icmp type {{ {', '.join(ICMP_TYPES)} }} accept",
        f"        icmpv6 type {{ {', '.join(ICMPV6_TYPES)} }} accept",
        "",
        "        # DHCPv4 replies (Hetzner's primary IPv4 and the private address are configured by",
        "        # DHCP), from Hetzner's DHCP servers only: not from anything that sends from port 67.",
        f"        ip saddr {{ {', '.join(dhcp_servers(settings))} }} udp sport 67 udp dport 68 accept",
        "",
        "        # WireGuard: the way in for operators (and for VPN-only clients).",
        f"        udp dport {vpn.port} accept",
        "",
        *web,
        "",
        "        # SSH only from inside the tunnel, never from the internet (ACC-02).",
        f'        iifname "{WIREGUARD_INTERFACE}" ip saddr {vpn.subnet} tcp dport {SSH_PORT} accept',
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
