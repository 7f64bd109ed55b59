"""wg0: no private key on disk; one peer per operator."""

from __future__ import annotations

import configparser
import re

from components.hostconfig import SECRET_FETCH_PATH, render_wireguard_config


def test_interface(settings):
    text = render_wireguard_config(settings)
    assert not re.search(r"(?im)^\s*PrivateKey\s*=", text)
    lines = text.splitlines()
    assert lines.index("[Interface]") < lines.index("[Peer]")
    assert f"Address = {settings.vpn.host_address}/{settings.vpn.subnet.prefixlen}" in lines
    assert f"ListenPort = {settings.vpn.port}" in lines
    assert f"PostUp = wg set %i private-key <({SECRET_FETCH_PATH} wireguard-private-key)" in lines


def test_peers(settings):
    text = render_wireguard_config(settings)
    peers = text.split("[Peer]")[1:]
    assert len(peers) == len(settings.vpn.peers)
    for block, peer in zip(peers, settings.vpn.peers, strict=True):
        assert f"PublicKey = {peer.public_key}" in block
        assert f"AllowedIPs = {peer.address}/32" in block


def test_parses_as_ini_sections(settings):
    # wg-quick's format is INI-like with repeated [Peer] sections.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(render_wireguard_config(settings).split("[Peer]")[0])
    assert parser["Interface"]["ListenPort"] == str(settings.vpn.port)
