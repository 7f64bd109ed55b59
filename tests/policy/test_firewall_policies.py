"""ACC-02 / TLS-02: nothing but 80/443 and the WireGuard port is open to the internet."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import firewall

from .conftest import (
    FIREWALL,
    FIREWALL_ATTACHMENT,
    SERVER,
    UNKNOWN,
    good_firewall,
    good_server,
    run_policy,
    run_stack_policy,
    stack_resource,
)

INGRESS = firewall.hcloud_firewall_public_ingress
ATTACHED = firewall.hcloud_server_firewall_attached
VPN_ONLY_SERVERS = firewall.hcloud_vpn_only_server_firewalls


def with_rule(**rule):
    fw = good_firewall()
    base = {"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": ["0.0.0.0/0"]}
    base.update(rule)
    fw["rules"].append({k: v for k, v in base.items() if v is not None})
    return fw


def ingress_violations(fw, config=None):
    return run_policy(INGRESS, FIREWALL, fw, config=config)


def test_public_firewall_with_web_and_vpn_ports_passes():
    assert ingress_violations(good_firewall()) == []


def test_firewall_opening_22_to_ipv4_world_is_a_violation():
    [message] = ingress_violations(with_rule())
    assert "tcp port 22" in message and "0.0.0.0/0" in message


def test_firewall_opening_22_to_ipv6_world_is_a_violation():
    assert ingress_violations(with_rule(sourceIps=["::/0"]))


@pytest.mark.parametrize("source", ["0::0/0", "::ffff:0:0/96", "0.0.0.0/1", "128.0.0.0/1", "203.0.113.7",
                                    "203.0.113.7/32", "2001:db8::/32", "100.64.0.0/10", "::ffff:203.0.113.0/120"])
def test_firewall_opening_22_to_any_public_source_is_a_violation(source):
    assert ingress_violations(with_rule(sourceIps=[source])), source


@pytest.mark.parametrize("source", ["10.66.0.0/24", "192.168.1.5", "172.16.0.0/12", "fd00::/8", "fe80::/64",
                                    "127.0.0.1", "::ffff:10.0.0.0/104"])
def test_firewall_opening_22_to_private_sources_only_passes(source):
    assert ingress_violations(with_rule(sourceIps=[source])) == []


def test_firewall_rule_mixing_private_and_world_sources_is_a_violation():
    assert ingress_violations(with_rule(sourceIps=["10.0.0.0/8", "::/0"]))


def test_firewall_rule_with_unparsable_source_is_a_violation():
    assert any("not a valid address" in v for v in ingress_violations(with_rule(port="443", sourceIps=["everyone"])))


@pytest.mark.parametrize("port", ["20-30", "1-65535", "any", "ANY", "442-444", "80-443", "0"])
def test_firewall_port_range_or_any_beyond_allowed_is_a_violation(port):
    assert ingress_violations(with_rule(port=port)), port


def test_firewall_rule_without_port_opens_all_ports_and_is_a_violation():
    [message] = ingress_violations(with_rule(port=None))
    assert "all tcp ports" in message


def test_firewall_port_given_as_number_is_judged_like_a_string():
    assert ingress_violations(with_rule(port=22))
    assert ingress_violations(with_rule(port=22.0))
    assert ingress_violations(with_rule(port=443)) == []


def test_firewall_protocol_case_differences_are_judged():
    assert ingress_violations(with_rule(protocol="TCP"))
    assert ingress_violations(with_rule(protocol="Tcp", port="443")) == []


def test_firewall_udp_other_than_vpn_port_is_a_violation():
    assert ingress_violations(with_rule(protocol="udp", port="53"))


def test_firewall_tcp_on_vpn_port_number_is_a_violation():
    assert ingress_violations(with_rule(protocol="tcp", port="51820"))


@pytest.mark.parametrize("protocol", ["esp", "gre", "ESP"])
def test_firewall_exposing_a_whole_protocol_is_a_violation(protocol):
    assert ingress_violations(with_rule(protocol=protocol, port=None))


def test_firewall_icmp_from_world_passes():
    assert ingress_violations(with_rule(protocol="icmp", port=None)) == []


def test_firewall_outbound_rule_to_world_passes():
    assert ingress_violations(with_rule(direction="out", sourceIps=None, destinationIps=["0.0.0.0/0"], port="any")) == []


def test_firewall_direction_case_difference_is_judged():
    assert ingress_violations(with_rule(direction="IN"))


def test_vpn_only_firewall_opening_443_is_a_violation():
    fw = good_firewall()
    fw["labels"]["exposure"] = "vpn-only"
    violations = ingress_violations(fw)
    assert any("tcp port 443" in v for v in violations) and any("tcp port 80" in v for v in violations)


def test_vpn_only_firewall_with_only_wireguard_passes():
    fw = good_firewall()
    fw["labels"]["exposure"] = "vpn-only"
    fw["rules"] = [r for r in fw["rules"] if r["protocol"] != "tcp" or r["sourceIps"] == ["10.66.0.0/24"]]
    assert ingress_violations(fw) == []


def test_firewall_policy_config_changes_the_vpn_port():
    fw = good_firewall()
    fw["rules"][0]["port"] = "51821"
    assert ingress_violations(fw)
    assert ingress_violations(fw, config={"vpnPort": 51821}) == []
    assert ingress_violations(fw, config={"vpnPort": 51821.0}) == []  # the engine sends JSON numbers


def test_firewall_policy_config_can_allow_another_tcp_port():
    assert ingress_violations(with_rule(port="8443"), config={"allowedPublicTcpPorts": [80, 443, 8443]}) == []


def test_bad_firewall_policy_config_is_reported_naming_the_key():
    [message] = ingress_violations(good_firewall(), config={"vpnPort": "wireguard"})
    assert "vpnPort" in message


def test_firewall_rule_with_unknown_source_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        ingress_violations(with_rule(sourceIps=[UNKNOWN]))


# --- server firewallIds ------------------------------------------------------------

def test_server_with_firewall_ids_passes():
    assert run_policy(ATTACHED, SERVER, good_server()) == []


def test_server_without_firewall_ids_is_a_violation():
    server = good_server()
    del server["firewallIds"]
    [message] = run_policy(ATTACHED, SERVER, server)
    assert "firewallIds" in message


def test_server_with_firewall_id_not_yet_known_passes():
    server = good_server()
    server["firewallIds"] = [UNKNOWN]
    assert run_policy(ATTACHED, SERVER, server) == []


# --- stack: a VPN-only server's firewalls ----------------------------------------------

def _stack(server_exposure: str, fw_props, via: str = "firewallIds"):
    fw = stack_resource(FIREWALL, fw_props, "fw")
    server_props = good_server()
    server_props["labels"]["exposure"] = server_exposure
    server = stack_resource(SERVER, server_props, "server")
    resources = [fw, server]
    if via == "firewallIds":
        server.property_dependencies["firewallIds"] = [fw]
    elif via == "attachment":
        att = stack_resource(FIREWALL_ATTACHMENT, {"firewallId": 1, "serverIds": [2]}, "att")
        att.property_dependencies.update({"firewallId": [fw], "serverIds": [server]})
        resources.append(att)
    return resources


def test_vpn_only_server_behind_public_firewall_is_a_violation():
    violations = run_stack_policy(VPN_ONLY_SERVERS, _stack("vpn-only", good_firewall()))
    assert any("tcp port 443" in v for v in violations)


def test_vpn_only_server_behind_public_firewall_via_attachment_is_a_violation():
    assert run_stack_policy(VPN_ONLY_SERVERS, _stack("vpn-only", good_firewall(), via="attachment"))


def test_public_server_behind_public_firewall_passes_stack_check():
    assert run_stack_policy(VPN_ONLY_SERVERS, _stack("public", good_firewall())) == []


def test_vpn_only_server_behind_wireguard_only_firewall_passes():
    fw = good_firewall()
    fw["rules"] = [fw["rules"][0]]
    assert run_stack_policy(VPN_ONLY_SERVERS, _stack("vpn-only", fw)) == []
