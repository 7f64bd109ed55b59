"""WireGuard (ACC-02, TLS-02, SEC-01): the rendered wg0.conf in a real tunnel.

The rendered config has no PrivateKey: wg-quick's PostUp pipes it from Vault.
Here the host side is set up the way wg-quick does it (``wg-quick strip`` ->
``wg setconf``, the Address line -> ``ip address add``), and the rendered
PostUp line itself runs, with the Vault fetcher replaced by a script printing a
throwaway key. The operator side is a peer built from the example stack's peer
entry, whose public key is replaced by a test key pair's. The rendered
nftables ruleset is loaded on the host side, so the tunnel goes through the
real firewall: WireGuard UDP from outside, then SSH only inside the tunnel.
wireguard-go stands in where the kernel lacks WireGuard.
"""

from __future__ import annotations

import re
import subprocess

from components.hostconfig import NFTABLES_PATH, SECRET_FETCH_PATH, WIREGUARD_CONFIG_PATH
from tests.conftest import require_tool

from .helpers import listen, probe_many, staged, wireguard_link

HOST, OPERATOR, STRANGER = "192.0.2.1", "192.0.2.2", "192.0.2.3"


def _keypair() -> tuple[str, str]:
    wg = require_tool("wg")
    private = subprocess.run([wg, "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    public = subprocess.run([wg, "pubkey"], input=private, capture_output=True, text=True, check=True).stdout.strip()
    return private, public


def _strip(config_text: str, directory) -> str:
    wg_quick = require_tool("wg-quick")
    path = directory / "wg0.conf"   # wg-quick takes the interface name from the file name
    path.write_text(config_text)
    path.chmod(0o600)
    result = subprocess.run([wg_quick, "strip", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_wireguard_rendered_config_has_no_private_key_and_strips_cleanly(staging_root, tmp_path):
    rendered = staged(staging_root, WIREGUARD_CONFIG_PATH).read_text()
    assert not re.search(r"(?im)^\s*PrivateKey\s*=", rendered)
    stripped = _strip(rendered, tmp_path)
    keys = [line.split("=", 1)[0].strip() for line in stripped.splitlines() if "=" in line and not line.startswith("#")]
    assert "PostUp" not in keys and "Address" not in keys
    assert "ListenPort" in keys and "[Peer]" in stripped


def test_wireguard_operator_reaches_ssh_only_through_the_tunnel(staging_root, settings, tmp_path, netns):
    """wg setconf accepts the rendered config; the tunnel passes traffic; the key is set
    by the rendered PostUp through a pipe; with the rendered firewall loaded, SSH answers
    the operator through the tunnel and nothing else gets in."""
    nft = require_tool("nft")
    vpn = settings.vpn
    peer = vpn.peers[0]
    host_private, host_public = _keypair()
    operator_private, operator_public = _keypair()
    stranger_private, _ = _keypair()

    rendered = staged(staging_root, WIREGUARD_CONFIG_PATH).read_text()
    assert f"PublicKey = {peer.public_key}" in rendered
    config = rendered.replace(f"PublicKey = {peer.public_key}", f"PublicKey = {operator_public}")

    host = netns.add("wgh")
    operator = netns.add("wgo")
    stranger = netns.add("wgs")
    netns.veth(host, "eth0", [f"{HOST}/24"], operator, "eth0", [f"{OPERATOR}/24"])
    # The stranger reaches the same public address over its own link.
    netns.veth(host, "eth1", [f"{HOST}/32"], stranger, "eth0", [f"{STRANGER}/24"])
    netns.run(host, "ip", "route", "add", STRANGER, "dev", "eth1")
    netns.run(host, nft, "-f", str(staged(staging_root, NFTABLES_PATH)))

    # Host side, as wg-quick does it: setconf with the stripped file, address, up, PostUp.
    host_wg = wireguard_link(netns, host)
    host_wg("setconf", "wg0", "/dev/stdin", input=_strip(config, tmp_path))
    address = re.search(r"(?m)^Address = (\S+)$", config).group(1)
    assert address == f"{vpn.host_address}/{vpn.subnet.prefixlen}"
    fetcher = tmp_path / "fake-odoo-hosting-secret"
    fetcher.write_text(f"#!/bin/sh\n[ \"$1\" = wireguard-private-key ] || exit 3\necho '{host_private}'\n")
    fetcher.chmod(0o700)
    post_up = re.search(r"(?m)^PostUp = (.+)$", config).group(1).replace("%i", "wg0")
    assert SECRET_FETCH_PATH in post_up
    post_up = post_up.replace(SECRET_FETCH_PATH, str(fetcher))
    # Run the PostUp line where wg sees the interface (for wireguard-go: its mount namespace).
    subprocess.run([*host_wg.prefix, "bash", "-c", post_up], check=True, timeout=30)
    netns.run(host, "ip", "address", "add", address, "dev", "wg0")
    netns.run(host, "ip", "link", "set", "wg0", "up")
    shown = host_wg("show", "wg0", "dump").stdout.splitlines()
    assert shown[0].split("\t")[:3] == [host_private, host_public, str(vpn.port)]
    assert {line.split("\t")[0] for line in shown[1:]} == {operator_public} | {p.public_key for p in vpn.peers[1:]}

    # Operator side, from the example stack's peer entry (test key), and a stranger
    # with an unknown key claiming the same tunnel address.
    for ns, private in ((operator, operator_private), (stranger, stranger_private)):
        wg = wireguard_link(netns, ns)
        wg("set", "wg0", "private-key", "/dev/stdin", "peer", host_public, "endpoint", f"{HOST}:{vpn.port}",
           "allowed-ips", str(vpn.subnet), input=private + "\n")
        netns.run(ns, "ip", "address", "add", f"{peer.address}/{vpn.subnet.prefixlen}", "dev", "wg0")
        netns.run(ns, "ip", "link", "set", "wg0", "up")

    listen(netns, host, str(vpn.host_address), tcp=[22, 5432, 8069])
    through_tunnel = [("tunnel", str(peer.address), str(vpn.host_address), ["tcp/22", "tcp/5432", "tcp/8069"])]
    # The first packet triggers the handshake: give SSH time, then the other ports.
    ssh = [("tunnel", str(peer.address), str(vpn.host_address), ["tcp/22"])]
    assert probe_many(netns, operator, ssh, timeout=3.0) == {"tunnel tcp/22": "open"}
    seen = probe_many(netns, operator, through_tunnel)
    assert seen == {"tunnel tcp/22": "open", "tunnel tcp/5432": "dropped", "tunnel tcp/8069": "dropped"}
    handshakes = dict(line.split("\t") for line in host_wg("show", "wg0", "latest-handshakes").stdout.splitlines())
    assert int(handshakes[operator_public]) > 0

    assert probe_many(netns, stranger, through_tunnel) == {
        "tunnel tcp/22": "dropped", "tunnel tcp/5432": "dropped", "tunnel tcp/8069": "dropped"}
    # From outside the tunnel, SSH to the host's public address is dropped for everyone.
    outside = probe_many(netns, operator, [("outside", OPERATOR, HOST, ["tcp/22"])])
    assert outside == {"outside tcp/22": "dropped"}
