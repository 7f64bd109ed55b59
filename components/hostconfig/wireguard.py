"""The WireGuard interface wg0: the operators' (and VPN-only clients') way in."""

from __future__ import annotations

from components.settings import Settings

from .paths import SECRET_FETCH_PATH, SECRET_NAME_WIREGUARD_KEY, WIREGUARD_CONFIG_PATH


def render_wireguard_config(settings: Settings) -> str:
    vpn = settings.vpn
    lines = [
        f"# {WIREGUARD_CONFIG_PATH}: managed by odoo-hosting.",
        "# No PrivateKey here: wg-quick runs PostUp through bash, and the key goes",
        "# from Vault to the kernel through a pipe; it never touches the disk (SEC-01).",
        "[Interface]",
        f"Address = {vpn.host_address}/{vpn.subnet.prefixlen}",
        f"ListenPort = {vpn.port}",
        f"PostUp = wg set %i private-key <({SECRET_FETCH_PATH} {SECRET_NAME_WIREGUARD_KEY})",
    ]
    for peer in vpn.peers:
        lines += [
            "",
            "[Peer]",
            f"# {peer.name}",
            f"PublicKey = {peer.public_key}",
            f"AllowedIPs = {peer.address}/32",
        ]
    return "\n".join(lines) + "\n"
