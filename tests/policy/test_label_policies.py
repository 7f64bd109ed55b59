"""ISO-01: every resource carries its client id, and one stack holds one client."""

from __future__ import annotations

import pytest

from odoo_hosting_policies import labels

from .conftest import (
    BUCKET,
    FIREWALL,
    NETWORK,
    SERVER,
    SSH_KEY,
    VOLUME,
    good_firewall,
    good_server,
    good_volume,
    run_policy,
    run_stack_policy,
    stack_resource,
)

LABEL = labels.hcloud_client_label
SINGLE_CLIENT = labels.pulumi_stack_single_client


@pytest.mark.parametrize("resource_type,props", [
    (SERVER, good_server()), (FIREWALL, good_firewall()), (VOLUME, good_volume()),
    (NETWORK, {"ipRange": "10.10.0.0/16", "labels": {"client": "acme"}}),
    (SSH_KEY, {"publicKey": "ssh-ed25519 AAAA alice", "labels": {"client": "acme"}}),
])
def test_labelled_hcloud_resources_pass(resource_type, props):
    assert run_policy(LABEL, resource_type, props) == []


def test_server_without_client_label_is_a_violation():
    server = good_server()
    del server["labels"]["client"]
    [message] = run_policy(LABEL, SERVER, server)
    assert "'client'" in message


def test_network_with_empty_client_label_is_a_violation():
    assert run_policy(LABEL, NETWORK, {"ipRange": "10.10.0.0/16", "labels": {"client": " "}})


def test_ssh_key_without_labels_is_a_violation():
    assert run_policy(LABEL, SSH_KEY, {"publicKey": "ssh-ed25519 AAAA alice"})


def test_client_label_key_comes_from_policy_config():
    server = good_server()
    server["labels"] = {"tenant": "acme"}
    assert run_policy(LABEL, SERVER, server, config={"clientLabelKey": "tenant"}) == []
    assert run_policy(LABEL, SERVER, server)


def test_bad_client_label_key_config_is_reported_naming_the_key():
    [message] = run_policy(LABEL, SERVER, good_server(), config={"clientLabelKey": ""})
    assert "clientLabelKey" in message


def test_resource_types_without_labels_are_not_judged():
    assert run_policy(LABEL, "hcloud:index/serverNetwork:ServerNetwork", {"serverId": 1}) == []


def test_stack_with_one_client_passes():
    resources = [stack_resource(SERVER, good_server(), "server"), stack_resource(VOLUME, good_volume(), "vol"),
                 stack_resource(BUCKET, {"tags": {"client": "acme"}}, "bucket")]
    assert run_stack_policy(SINGLE_CLIENT, resources) == []


def test_stack_mixing_two_clients_is_a_violation_naming_both():
    other = good_volume()
    other["labels"]["client"] = "globex"
    resources = [stack_resource(SERVER, good_server(), "server"), stack_resource(VOLUME, other, "vol")]
    [message] = run_stack_policy(SINGLE_CLIENT, resources)
    assert "acme" in message and "globex" in message


def test_stack_mixing_clients_through_aws_tags_is_a_violation():
    resources = [stack_resource(SERVER, good_server(), "server"),
                 stack_resource(BUCKET, {"tags": {"client": "globex"}}, "bucket")]
    assert run_stack_policy(SINGLE_CLIENT, resources)
