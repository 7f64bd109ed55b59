"""The pack's two scopes: client-stack rules judge only resources inside a client stack (the
ClientStack component in the URN, or a stack the clientStacks setting names); the baseline judges any
program's resources; a policy that cannot see what it needs says so ("cannot check"), never passes."""

from __future__ import annotations

import pytest
from pulumi_policy import StackValidationPolicy

from odoo_hosting_policies import ALL_POLICIES, buckets, connections, containers, labels, odoo_conf, proxy, volume
from odoo_hosting_policies._meta import CannotCheck
from odoo_hosting_policies._scope import CLIENT_STACK_TYPE, SCOPE_CONFIG, in_client_stack

from .conftest import (
    BUCKET,
    SERVER,
    VOLUME,
    good_volume,
    not_applicable_reason,
    run_policy,
    stack_not_applicable_reason,
    stack_resource,
)

CONTAINER = "docker:index/container:Container"
SSE = buckets.ENCRYPTION[0]
LIFECYCLE = buckets.LIFECYCLE[0]
CLIENT_RULES = {
    "hcloud-resource-client-label", "aws-resource-client-tag", "pulumi-stack-single-client",
    "hcloud-server-fail2ban-jails", "hcloud-server-unattended-upgrades", "hcloud-server-backup-agent",
    "hcloud-server-host-bundle", "docker-proxy-https-only", "docker-odoo-conf-hardened",
    "docker-odoo-outside-connections-tls", "docker-odoo-sso-ldap-tls", "hcloud-server-vpn-only-firewalls",
}


def _urn(chain: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::prog::{chain}::r"


@pytest.mark.parametrize("urn,cfg,inside", [
    (_urn(f"{CLIENT_STACK_TYPE}$odoo-hosting:host:Host${SERVER}"), {}, True),
    (_urn(CLIENT_STACK_TYPE), {}, True),
    (_urn(SERVER), {}, False),
    (_urn(f"my:web:Frontend${SERVER}"), {}, False),
    (_urn(SERVER, "client-acme"), {"clientStacks": ["client-*"]}, True),
    (_urn(SERVER, "prod"), {"clientStacks": ["client-*"]}, False),
    (_urn(f"acme:Tenant${SERVER}"), {"clientComponentTypes": ["acme:Tenant"]}, True),
    (_urn(f"{CLIENT_STACK_TYPE}${SERVER}"), {"clientComponentTypes": ["acme:Tenant"]}, False),
    ("not-a-urn", {}, False),
])
def test_what_counts_as_inside_a_client_stack(urn, cfg, inside):
    assert in_client_stack(urn, cfg) is inside


def test_every_client_rule_takes_the_scope_settings_and_the_baseline_does_not_need_them():
    names = {p.name for p in ALL_POLICIES}
    assert names >= CLIENT_RULES
    for policy in ALL_POLICIES:
        props = (policy.config_schema.properties if policy.config_schema else {}) or {}
        if policy.name in CLIENT_RULES:
            assert set(SCOPE_CONFIG) <= set(props), policy.name


def test_client_rules_are_not_applicable_outside_a_client_stack():
    unlabelled = {"name": "web"}
    for policy in (labels.hcloud_client_label, labels.aws_client_tag):
        resource_type = VOLUME if policy is labels.hcloud_client_label else BUCKET
        assert run_policy(policy, resource_type, unlabelled), policy.name  # inside: the label is missing
        reason = not_applicable_reason(policy, resource_type, unlabelled, client_stack=False)
        assert reason and "ClientStack" in reason, policy.name
    # ... and judge again where the config names the stack (outside the component)
    cfg = {"clientStacks": ["dev"]}
    assert run_policy(labels.hcloud_client_label, VOLUME, unlabelled, client_stack=False, config=cfg)
    # a bad setting is reported naming its key, not a crash
    [message] = run_policy(labels.hcloud_client_label, VOLUME, unlabelled, config={"clientStacks": "dev"})
    assert "clientStacks" in message


def test_a_client_stack_policy_judges_only_the_stacks_client_resources():
    policy = labels.pulumi_stack_single_client
    assert isinstance(policy, StackValidationPolicy)
    acme = stack_resource(VOLUME, {"labels": {"client": "acme"}}, "a")
    other = stack_resource(VOLUME, {"labels": {"client": "globex"}}, "b", client_stack=False)
    assert run_policy(policy, VOLUME, {"labels": {"client": "acme"}}, stack=[other]) == []
    assert run_policy(policy, VOLUME, {"labels": {"client": "globex"}}, stack=[acme])
    reason = stack_not_applicable_reason(policy, [other])
    assert reason and "ClientStack" in reason and reason.endswith("the stack has none")


# -- the mixed policies: a baseline everywhere, the backup-bucket rules only in a client stack --------

def test_any_programs_bucket_needs_encryption_but_not_the_backup_tiers():
    aes = {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
    none = {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "none"}}]}
    assert run_policy(buckets.s3_bucket_settings, SSE, aes, client_stack=False) == []
    assert run_policy(buckets.s3_bucket_settings, SSE, none, client_stack=False)
    # A client's backup bucket needs SSE-KMS: judged by the stack policy, which sees what the bucket receives.
    assert run_policy(buckets.s3_bucket_settings, SSE, aes) == []
    lifecycle = {"bucket": "b", "rules": []}
    assert run_policy(buckets.s3_bucket_settings, LIFECYCLE, lifecycle)
    assert not_applicable_reason(buckets.s3_bucket_settings, LIFECYCLE, lifecycle, client_stack=False)


def test_any_programs_bucket_is_missing_only_its_baseline_pieces():
    bucket = stack_resource(BUCKET, {"bucket": "site"}, "site", client_stack=False)
    messages = run_policy(buckets.s3_bucket_hardening_complete, BUCKET, {"bucket": "x"}, name="x",
                          client_stack=False, stack=[bucket])
    pieces = {p.what for p in buckets.PIECES if p.baseline}
    assert len(messages) == 2 * len(pieces)
    assert all(any(what in m for what in pieces) for m in messages)
    assert not any("object lock" in m or "lifecycle" in m for m in messages)


def test_force_destroy_wording_follows_the_scope():
    [inside] = [m for m in run_policy(buckets.s3_bucket_settings, BUCKET, {"forceDestroy": True}) if "force" in m]
    [outside] = run_policy(buckets.s3_bucket_settings, BUCKET, {"forceDestroy": True}, client_stack=False)
    assert "every backup" in inside and "every object" in outside and "backup" not in outside


def test_any_programs_container_may_publish_a_web_port_but_no_admin_port():
    base = {"name": "web", "image": "nginx@sha256:" + "a" * 64, "securityOpts": ["no-new-privileges:true"]}
    web = {**base, "ports": [{"internal": 80, "external": 8080}]}
    ssh = {**base, "ports": [{"internal": 22, "external": 2222}]}
    local = {**base, "ports": [{"internal": 6379, "external": 6379, "ip": "127.0.0.1"}]}
    policy = containers.docker_container_isolated
    assert run_policy(policy, CONTAINER, web, client_stack=False) == []
    assert run_policy(policy, CONTAINER, local, client_stack=False) == []
    [message] = run_policy(policy, CONTAINER, ssh, client_stack=False)
    assert "22" in message and "proxy" not in message
    [message] = run_policy(policy, CONTAINER, web)  # in a client stack only the proxy publishes
    assert "proxy" in message


@pytest.mark.parametrize("hetzner,pulumi,inside,expected", [
    (True, True, True, []), (True, False, True, ["Pulumi protect"]), (False, True, True, ["Hetzner deleteProtection"]),
    (True, False, False, []), (False, True, False, []),
    (False, False, False, ["Hetzner deleteProtection", "Pulumi protect"]),
])
def test_volume_protection_names_which_protection_is_missing(hetzner, pulumi, inside, expected):
    props = {**good_volume(), "deleteProtection": hetzner}
    messages = run_policy(volume.hcloud_volume_protected, VOLUME, props, protect=pulumi, client_stack=inside)
    assert len(messages) == len(expected)
    for message, what in zip(messages, expected, strict=True):
        assert what in message
    if len(expected) == 1:  # the message names the missing one and does not blame the other
        other = "Pulumi protect option" if expected[0].startswith("Hetzner") else "Hetzner deleteProtection ("
        assert other not in messages[0]


# -- cannot check: a value the policy needs and cannot see is an advisory, never a pass ---------------

def _odoo(**drop: bool) -> dict:
    items = [("odoo-hosting/role", "odoo"), ("odoo-hosting/sso", '{"oauth": [], "ldap": null}'),
             ("odoo-hosting/outside-connections", "[]")]
    return {"name": "odoo", "image": "odoo:17.0", "envs": ["ODOO_CONF=[options]\nlist_db = False\n"],
            "labels": [{"label": k, "value": v} for k, v in items if not drop.get(k.split("/")[1])]}


@pytest.mark.parametrize("policy,drop,what", [
    (connections.odoo_sso_ldap_tls, "sso", "odoo-hosting/sso"),
    (connections.odoo_outside_connections_tls, "outside-connections", "odoo-hosting/outside-connections"),
])
def test_a_missing_label_on_the_odoo_container_is_cannot_check_not_a_pass(policy, drop, what):
    assert run_policy(policy, CONTAINER, _odoo()) == []
    with pytest.raises(CannotCheck, match=f"cannot check .*'{what}'"):
        run_policy(policy, CONTAINER, _odoo(**{drop: True}))


@pytest.mark.parametrize("policy", [connections.odoo_sso_ldap_tls, connections.odoo_outside_connections_tls,
                                    odoo_conf.odoo_conf_hardened])
def test_which_containers_the_odoo_policies_judge(policy):
    other = {"name": "db", "image": "postgres:16", "labels": [{"label": "odoo-hosting/role", "value": "database"}]}
    assert "Odoo container" in not_applicable_reason(policy, CONTAINER, other)
    with pytest.raises(CannotCheck, match="cannot tell whether it is the Odoo container"):
        run_policy(policy, CONTAINER, {"name": "x", "image": "busybox"})


def test_odoo_conf_not_visible_is_cannot_check():
    props = _odoo()
    props["envs"] = []
    with pytest.raises(CannotCheck, match="ODOO_CONF"):
        run_policy(odoo_conf.odoo_conf_hardened, CONTAINER, props)


def test_a_caddy_container_without_its_caddyfile_is_cannot_check():
    with pytest.raises(CannotCheck, match="Caddyfile"):
        run_policy(proxy.caddy_proxy_https_only, CONTAINER, {"name": "edge", "image": "caddy:2"})
    assert not_applicable_reason(proxy.caddy_proxy_https_only, CONTAINER, {"name": "web", "image": "nginx"})


def test_cannot_check_reaches_the_engine_as_the_sdks_advisory():
    # the SDK turns an UnknownValueError into "can't run policy ... during preview: <message>" (advisory)
    from pulumi_policy.proxy import UnknownValueError
    error = CannotCheck("x: y")
    assert isinstance(error, UnknownValueError) and error.message == "cannot check x: y"


def test_vault_policy_wording_follows_the_scope():
    from odoo_hosting_policies import vault
    props = {"name": "web", "policy": 'path "secret/*" { capabilities = ["read"] }'}
    [inside] = run_policy(vault.vault_policy_client_scoped, "vault:index/policy:Policy", props)
    [outside] = run_policy(vault.vault_policy_client_scoped, "vault:index/policy:Policy", props, client_stack=False)
    assert "other clients' paths" in inside and "client" not in outside and "beyond the policy's own" in outside


def test_an_aws_resource_whose_region_cannot_be_seen_is_cannot_check():
    from odoo_hosting_policies import location

    from .conftest import provider
    policy = location.aws_resource_eu_region
    with pytest.raises(CannotCheck, match="region of this AWS resource"):
        run_policy(policy, BUCKET, {"bucket": "b"}, client_stack=False)
    assert run_policy(policy, BUCKET, {"bucket": "b"}, client_stack=False, provider_resource=provider("eu-west-1")) == []
    assert run_policy(policy, BUCKET, {"bucket": "b"}, client_stack=False, provider_resource=provider("us-east-1"))
