"""SEC-02 / SEC-03: Vault policies, AppRole roles, break-glass and audit."""

from __future__ import annotations

import json

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import vault

from .conftest import UNKNOWN, run_policy, run_stack_policy, stack_resource

POLICY_RULES = vault.vault_policy_client_scoped
APPROLE = vault.vault_approle_bound
EMERGENCY = vault.vault_emergency_seal_and_audit
POLICY = "vault:index/policy:Policy"
AUDIT = "vault:index/audit:Audit"
MOUNT = "vault:index/mount:Mount"
ROLE = "vault:appRole/authBackendRole:AuthBackendRole"

CLIENT_HCL = """\
# the host reads its own secrets
path "odoo-hosting/data/acme/*" {
  capabilities = ["read"]
}

path "odoo-hosting/metadata/acme/*" {
  capabilities = ["list"]
}
"""

BREAK_GLASS_HCL = """\
path "sys/seal" {
  capabilities = ["update", "sudo"]
}
"""


def client_policy(text=CLIENT_HCL, name="acme-host"):
    return {"name": name, "policy": text}


def test_client_scoped_hcl_policy_passes():
    assert run_policy(POLICY_RULES, POLICY, client_policy()) == []


def test_client_scoped_json_policy_passes():
    text = json.dumps({"path": {"odoo-hosting/data/acme/*": {"capabilities": ["read"]}}})
    assert run_policy(POLICY_RULES, POLICY, client_policy(text)) == []


def test_break_glass_seal_policy_passes():
    assert run_policy(POLICY_RULES, POLICY, client_policy(BREAK_GLASS_HCL, name="break-glass-seal")) == []


@pytest.mark.parametrize("path", ["*", "*/data/acme/*", "secret/*", "odoo-hosting/*", "odoo-hosting/data/*",
                                  "odoo-hosting/clients/*", "odoo-hosting/data/acme*",
                                  "odoo-hosting/data/+/config", "odoo-hosting/data/*/config", "+/data/acme/x"])
def test_wildcard_path_reaching_other_clients_is_a_violation(path):
    text = f'path "{path}" {{\n  capabilities = ["read"]\n}}\n'
    messages = run_policy(POLICY_RULES, POLICY, client_policy(text))
    assert messages and path in messages[0]


def test_wildcard_deep_inside_the_clients_own_path_passes():
    text = 'path "odoo-hosting/data/acme/+/config" { capabilities = ["read"] }\n'
    assert run_policy(POLICY_RULES, POLICY, client_policy(text)) == []


def test_wildcard_in_json_policy_is_a_violation():
    text = json.dumps({"path": {"secret/*": {"capabilities": ["read"]}}})
    assert run_policy(POLICY_RULES, POLICY, client_policy(text))


def test_sudo_capability_is_a_violation():
    text = CLIENT_HCL.replace('["read"]', '["read", "sudo"]')
    [message] = run_policy(POLICY_RULES, POLICY, client_policy(text))
    assert "sudo" in message


def test_sudo_in_upper_case_is_a_violation():
    text = CLIENT_HCL.replace('["read"]', '["read", "SUDO"]')
    assert run_policy(POLICY_RULES, POLICY, client_policy(text))


def test_legacy_policy_sudo_is_a_violation():
    text = 'path "odoo-hosting/data/acme/x" {\n  policy = "sudo"\n}\n'
    assert run_policy(POLICY_RULES, POLICY, client_policy(text))


@pytest.mark.parametrize("path", ["sys/policies/acl/acme", "sys/mounts", "/sys/seal", "sys/seal"])
def test_sys_path_in_client_policy_is_a_violation(path):
    text = f'path "{path}" {{ capabilities = ["read"] }}\n'
    [message] = run_policy(POLICY_RULES, POLICY, client_policy(text))
    assert "sys/" in message


def test_break_glass_policy_may_not_grant_other_sys_paths():
    text = BREAK_GLASS_HCL + 'path "sys/unseal" { capabilities = ["update", "sudo"] }\n'
    [message] = run_policy(POLICY_RULES, POLICY, client_policy(text, name="break-glass-seal"))
    assert "sys/unseal" in message


def test_break_glass_policy_may_not_grant_sudo_elsewhere():
    text = BREAK_GLASS_HCL + 'path "odoo-hosting/data/acme/x" { capabilities = ["read", "sudo"] }\n'
    [message] = run_policy(POLICY_RULES, POLICY, client_policy(text, name="break-glass-seal"))
    assert "sudo" in message


def test_commented_out_path_is_ignored_but_string_with_hash_is_kept():
    text = '# path "secret/*" { capabilities = ["read"] }\npath "odoo-hosting/data/acme/#x" { capabilities = ["read"] }\n'
    assert run_policy(POLICY_RULES, POLICY, client_policy(text)) == []


def test_unreadable_policy_is_a_violation():
    [message] = run_policy(POLICY_RULES, POLICY, client_policy('allow everything'))
    assert "cannot be checked" in message


def test_unclosed_path_block_is_a_violation():
    assert run_policy(POLICY_RULES, POLICY, client_policy('path "odoo-hosting/data/acme/*" { capabilities = ["read"]'))


def test_unknown_policy_text_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(POLICY_RULES, POLICY, client_policy(UNKNOWN))


def test_minimum_glob_depth_comes_from_policy_config():
    text = 'path "kv/acme/*" { capabilities = ["read"] }\n'
    assert run_policy(POLICY_RULES, POLICY, client_policy(text))
    assert run_policy(POLICY_RULES, POLICY, client_policy(text), config={"minimumGlobDepth": 2}) == []


# --- AppRole ------------------------------------------------------------------------

def good_role():
    return {"backend": "approle", "roleName": "acme-host", "tokenPolicies": ["acme-host"],
            "tokenTtl": 900, "tokenMaxTtl": 3600, "secretIdNumUses": 1, "secretIdTtl": 600,
            "tokenBoundCidrs": ["10.66.0.2/32"], "secretIdBoundCidrs": ["10.66.0.2/32"]}


def role_with(**changes):
    role = good_role()
    for key, value in changes.items():
        if value is None:
            role.pop(key, None)
        else:
            role[key] = value
    return role


def test_bound_short_lived_single_use_role_passes():
    assert run_policy(APPROLE, ROLE, good_role()) == []


@pytest.mark.parametrize("key", ["tokenTtl", "tokenMaxTtl"])
def test_missing_token_ttl_is_a_violation(key):
    [message] = run_policy(APPROLE, ROLE, role_with(**{key: None}))
    assert key in message


@pytest.mark.parametrize("key,value", [("tokenTtl", 7200), ("tokenMaxTtl", "86400"), ("tokenTtl", 0)])
def test_long_or_zero_token_ttl_is_a_violation(key, value):
    [message] = run_policy(APPROLE, ROLE, role_with(**{key: value}))
    assert key in message


@pytest.mark.parametrize("uses", [None, 0, 5])
def test_secret_id_not_single_use_is_a_violation(uses):
    [message] = run_policy(APPROLE, ROLE, role_with(secretIdNumUses=uses))
    assert "secretIdNumUses" in message


def test_secret_id_uses_as_string_one_passes():
    assert run_policy(APPROLE, ROLE, role_with(secretIdNumUses="1")) == []


def test_unbound_role_is_a_violation():
    [message] = run_policy(APPROLE, ROLE, role_with(tokenBoundCidrs=None, secretIdBoundCidrs=[]))
    assert "tokenBoundCidrs" in message


def test_role_bound_to_an_address_unknown_at_preview_is_bound():
    # host_ipv4.apply(host_cidr): the server's address is known only once it exists
    assert run_policy(APPROLE, ROLE, role_with(tokenBoundCidrs=[UNKNOWN], secretIdBoundCidrs=[UNKNOWN])) == []
    [message] = run_policy(APPROLE, ROLE, role_with(tokenBoundCidrs=[""], secretIdBoundCidrs=[" "]))
    assert "tokenBoundCidrs" in message
    with pytest.raises(UnknownValueError):  # a wholly unknown list may bind nothing: cannot check
        run_policy(APPROLE, ROLE, role_with(tokenBoundCidrs=UNKNOWN, secretIdBoundCidrs=None))


def test_role_bound_only_through_secret_id_cidrs_passes():
    assert run_policy(APPROLE, ROLE, role_with(tokenBoundCidrs=None)) == []


def test_role_granting_root_policy_is_a_violation():
    assert run_policy(APPROLE, ROLE, role_with(tokenPolicies=["acme-host", "root"]))


def test_token_ttl_limit_comes_from_policy_config():
    assert run_policy(APPROLE, ROLE, good_role(), config={"maximumTokenTtlSeconds": 600})


def test_bad_token_ttl_config_is_reported_naming_the_key():
    [message] = run_policy(APPROLE, ROLE, good_role(), config={"maximumTokenTtlSeconds": -1})
    assert "maximumTokenTtlSeconds" in message


# --- SEC-03 stack -------------------------------------------------------------------

def vault_stack(*, audit=True, break_glass=BREAK_GLASS_HCL, break_glass_name="break-glass-seal"):
    resources = [stack_resource(MOUNT, {"path": "odoo-hosting", "type": "kv-v2"}, "kv"),
                 stack_resource(POLICY, client_policy(), "acme-host")]
    if audit:
        resources.append(stack_resource(AUDIT, {"type": "file", "options": {"file_path": "stdout"}}, "audit"))
    if break_glass is not None:
        resources.append(stack_resource(POLICY, {"name": break_glass_name, "policy": break_glass}, "break-glass"))
    return resources


def test_vault_stack_with_audit_and_break_glass_passes():
    assert run_stack_policy(EMERGENCY, vault_stack()) == []


def test_stack_without_vault_resources_is_not_judged():
    assert run_stack_policy(EMERGENCY, [stack_resource("hcloud:index/volume:Volume", {}, "vol")]) == []


def test_vault_stack_without_audit_device_is_a_violation():
    [message] = run_stack_policy(EMERGENCY, vault_stack(audit=False))
    assert "audit" in message


def test_vault_stack_without_break_glass_policy_is_a_violation():
    [message] = run_stack_policy(EMERGENCY, vault_stack(break_glass=None))
    assert "sys/seal" in message


def test_seal_policy_not_named_break_glass_does_not_count():
    assert run_stack_policy(EMERGENCY, vault_stack(break_glass_name="ops-seal"))


def test_break_glass_policy_without_sudo_on_seal_does_not_count():
    text = 'path "sys/seal" { capabilities = ["update"] }\n'
    assert run_stack_policy(EMERGENCY, vault_stack(break_glass=text))
