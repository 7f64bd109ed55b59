"""SEC-01/02/03: the Vault side of a client stack and the organisation component, under mocks."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from components.client_stack import ClientStack, ClientStackArgs
from components.secrets import (
    BREAK_GLASS_POLICY,
    HOST_TOKEN_MAX_TTL,
    HOST_TOKEN_TTL,
    KV_MOUNT,
    RESTIC_PASSWORD_LENGTH,
    VaultOrganisation,
    VaultOrganisationArgs,
    render_bootstrap_policy,
    render_break_glass_policy,
    render_host_policy,
)
from tests.conftest import EXAMPLE_STACKS, example_settings

ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
KV = "vault:kv/secretV2:SecretV2"
POLICY = "vault:index/policy:Policy"
PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp"
SERVER = "hcloud:index/server:Server"



def _named(program, suffix):
    [found] = [r for r in program.registrations if r.name.endswith(suffix)]
    return found


def test_host_role_is_short_lived_single_use_and_bound_to_the_primary_ip(built):
    settings, program = built
    ip = program.one(PRIMARY_IP).outputs["ipAddress"]
    role = _named(program, "-vault-host-role").inputs
    assert role["roleName"] == role["roleId"] == f"{settings.client_id}-host"
    assert role["tokenTtl"] == HOST_TOKEN_TTL == 900
    assert role["tokenMaxTtl"] == HOST_TOKEN_MAX_TTL <= 3600
    assert role["secretIdNumUses"] == 1
    assert role["bindSecretId"] is True
    assert role["secretIdBoundCidrs"] == role["tokenBoundCidrs"] == [f"{ip}/32"]
    assert role["tokenPolicies"] == [f"{settings.client_id}-host"]


def test_bootstrap_role_can_only_mint_a_wrapped_secret_id_from_the_host_address(built):
    settings, program = built
    ip = program.one(PRIMARY_IP).outputs["ipAddress"]
    role = _named(program, "-vault-bootstrap-role").inputs
    assert role["roleId"] == f"{settings.client_id}-bootstrap"
    assert role["bindSecretId"] is False
    assert role["secretIdBoundCidrs"] == role["tokenBoundCidrs"] == [f"{ip}/32"]
    assert role["tokenNumUses"] == 1 and role["tokenTtl"] <= 60
    assert role["tokenNoDefaultPolicy"] is True
    policy = _named(program, "-vault-bootstrap-policy").inputs["policy"]
    assert policy == render_bootstrap_policy(settings.client_id)
    assert f'path "auth/approle/role/{settings.client_id}-host/secret-id"' in policy
    assert 'capabilities = ["update"]' in policy and "min_wrapping_ttl" in policy


def test_server_takes_the_pre_allocated_address(built):
    _settings, program = built
    ip = program.one(PRIMARY_IP)
    assert ip.inputs["autoDelete"] is False and ip.inputs["type"] == "ipv4"
    [net] = program.one(SERVER).inputs["publicNets"]
    assert net["ipv4"] == int(ip.id) and net["ipv4Enabled"] is True


def test_host_policy_reads_only_the_clients_own_paths(built):
    settings, program = built
    text = _named(program, "-vault-host-policy").inputs["policy"]
    assert text == render_host_policy(settings.client_id)
    assert "*" not in text and "sudo" not in text and "sys/" not in text
    for kind in ("boot", "backup"):
        assert f'path "{KV_MOUNT}/data/clients/{settings.client_id}/{kind}"' in text
    assert text.count('capabilities = ["read"]') == text.count("path ")


def test_secrets_go_to_the_clients_kv_paths_as_pulumi_secrets(pulumi_run):
    """dataJson travels as a Pulumi secret (encrypted in the state), never as plain text."""
    settings = example_settings("example-public")
    program = pulumi_run(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings)))
    kvs = {r.inputs["name"]: r for r in program.of_type(KV)}
    assert set(kvs) == {f"clients/{settings.client_id}/boot", f"clients/{settings.client_id}/backup"}
    for r in kvs.values():
        assert r.inputs["mount"] == KV_MOUNT
        data = r.inputs["dataJson"]
        assert isinstance(data, dict) and data.get(rpc._special_sig_key) == rpc._special_secret_sig, r.name
    boot = json.loads(kvs[f"clients/{settings.client_id}/boot"].inputs["dataJson"]["value"])
    assert {"luks-key", "wireguard-private-key"} <= set(boot)
    backup = json.loads(kvs[f"clients/{settings.client_id}/backup"].inputs["dataJson"]["value"])
    # (the incident topic's ARN joins them once AWS has created the topic; unknown under mocks)
    assert set(backup) - {"incident-topic-arn"} == {"restic-password", "restic-password-previous",
                                                    "aws-access-key-id", "aws-secret-access-key"}
    assert len(backup["restic-password"]) == RESTIC_PASSWORD_LENGTH >= 32
    assert backup["restic-password"] != backup["restic-password-previous"]


def test_restic_passwords_are_distinct_per_client(pulumi_run):
    values = []
    for stack in EXAMPLE_STACKS:
        settings = example_settings(stack)
        program = pulumi_run(lambda s=settings: ClientStack(s.client_id, ClientStackArgs(settings=s)), stack=stack)
        values += [r.outputs["result"] for r in program.of_type("random:index/randomPassword:RandomPassword")
                   if "restic-password" in r.name]
    assert len(values) == 4 and len(set(values)) == 4


def test_no_vault_token_in_config_or_state(built):
    _settings, program = built
    for r in program.registrations:
        assert "token" not in {k.lower() for k in r.inputs} or r.type != "pulumi:providers:vault"
    assert not program.of_type("pulumi:providers:vault"), "the default provider reads VAULT_TOKEN from the environment"


def test_organisation_component_has_mount_audit_and_break_glass(pulumi_run):
    program = pulumi_run(lambda: VaultOrganisation("org", VaultOrganisationArgs(
        emergency_operator_entity_ids=["entity-1"])))
    mount = program.one("vault:index/mount:Mount")
    assert mount.inputs["path"] == KV_MOUNT and mount.inputs["options"] == {"version": "2"}
    assert mount.protect and mount.retain_on_delete
    audit = program.one("vault:index/audit:Audit")
    assert audit.inputs["type"] == "file" and audit.protect
    policy = program.one(POLICY)
    assert policy.inputs["name"] == BREAK_GLASS_POLICY and policy.inputs["policy"] == render_break_glass_policy()
    group = program.one("vault:identity/group:Group")
    assert group.inputs["policies"] == [BREAK_GLASS_POLICY] and group.inputs["memberEntityIds"] == ["entity-1"]
    assert program.one("vault:index/authBackend:AuthBackend").inputs["type"] == "approle"


def test_organisation_args_reject_a_relative_audit_path():
    with pytest.raises(ValueError, match="absolute"):
        VaultOrganisationArgs(audit_log_path="audit.log")


def test_outputs_name_paths_and_roles(pulumi_run):
    settings = example_settings("example-private")
    holder = {}

    def program():
        holder["c"] = ClientStack(settings.client_id, ClientStackArgs(settings=settings))

    pulumi_run(program)
    assert _sync_await(holder["c"].boot_secrets_path.future()) == f"odoo-hosting/clients/{settings.client_id}/boot"
