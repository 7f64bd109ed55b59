"""BKP-05: IAM policies are limited to the client's own bucket."""

from __future__ import annotations

import json

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import iam

from .conftest import UNKNOWN, run_policy

POLICY = iam.iam_policy_least_privilege

IAM_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE = "aws:iam/role:Role"


def statement(**changes):
    st = {"Sid": "Backups", "Effect": "Allow",
          "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
          "Resource": ["arn:aws:s3:::acme-backups", "arn:aws:s3:::acme-backups/*"]}
    for key, value in changes.items():
        if value is None:
            st.pop(key, None)
        else:
            st[key] = value
    return st


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements) or [statement()]})


def good_policy():
    return {"name": "acme-backup", "policy": document(), "tags": {"client": "acme"}}


def good_role():
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/acme-backup"},
        "Action": "sts:AssumeRole"}]}
    return {"assumeRolePolicy": json.dumps(trust), "tags": {"client": "acme"},
            "inlinePolicies": [{"name": "backups", "policy": document()}]}


@pytest.mark.parametrize("resource_type", [IAM_POLICY, USER_POLICY, ROLE_POLICY, GROUP_POLICY])
def test_bucket_scoped_policy_passes(resource_type):
    assert run_policy(POLICY, resource_type, good_policy()) == []


def test_role_with_named_principal_and_scoped_inline_policy_passes():
    assert run_policy(POLICY, ROLE, good_role()) == []


@pytest.mark.parametrize("action", ["*", "s3:*", "S3:*", "*:*"])
def test_wildcard_action_as_list_item_is_a_violation(action):
    [message] = run_policy(POLICY, IAM_POLICY, {"policy": document(statement(Action=["s3:GetObject", action]))})
    assert action in message and "wildcard action" in message


@pytest.mark.parametrize("action", ["*", "s3:*"])
def test_wildcard_action_as_single_string_is_a_violation(action):
    assert run_policy(POLICY, USER_POLICY, {"policy": document(statement(Action=action))})


def test_not_action_is_a_violation():
    [message] = run_policy(POLICY, IAM_POLICY, {"policy": document(statement(Action=None, NotAction="iam:*"))})
    assert "NotAction" in message


@pytest.mark.parametrize("resource", ["*", "arn:aws:s3:::*", "arn:aws:s3:::*/*", "arn:aws:s3:::acme-*",
                                      "arn:aws:s3:::acme-backup?/*", "arn:aws:kms:eu-central-1:1:key/*",
                                      "arn:aws:s3:*::acme-backups"])
def test_wildcard_resource_is_a_violation(resource):
    [message] = run_policy(POLICY, IAM_POLICY, {"policy": document(statement(Resource=[resource]))})
    assert resource in message


def test_wildcard_resource_as_single_string_is_a_violation():
    assert run_policy(POLICY, ROLE_POLICY, {"policy": document(statement(Resource="*"))})


def test_object_wildcard_inside_a_named_bucket_passes():
    assert run_policy(POLICY, IAM_POLICY, {"policy": document(statement(Resource="arn:aws:s3:::acme-backups/*"))}) == []


def test_not_resource_is_a_violation():
    [message] = run_policy(POLICY, IAM_POLICY,
                           {"policy": document(statement(Resource=None, NotResource="arn:aws:s3:::acme-backups"))})
    assert "NotResource" in message


def test_deny_statement_with_wildcards_passes():
    deny = statement(Effect="Deny", Action="s3:*", Resource="*")
    assert run_policy(POLICY, IAM_POLICY, {"policy": document(statement(), deny)}) == []


def test_statement_as_single_object_is_read():
    doc = json.dumps({"Version": "2012-10-17", "Statement": statement(Action="s3:*")})
    assert run_policy(POLICY, IAM_POLICY, {"policy": doc})


def test_policy_given_as_object_not_string_is_read():
    doc = {"Version": "2012-10-17", "Statement": [statement(Resource="*")]}
    assert run_policy(POLICY, IAM_POLICY, {"policy": doc})


def test_effect_in_lower_case_is_still_an_allow():
    assert run_policy(POLICY, IAM_POLICY, {"policy": document(statement(Effect="allow", Action="*"))})


def test_policy_that_is_not_json_is_a_violation():
    [message] = run_policy(POLICY, IAM_POLICY, {"policy": "Allow everything"})
    assert "not valid JSON" in message


def test_role_inline_policy_with_wildcard_is_a_violation():
    role = good_role()
    role["inlinePolicies"][0]["policy"] = document(statement(Action="s3:*"))
    [message] = run_policy(POLICY, ROLE, role)
    assert "inline policy 'backups'" in message


def test_role_trust_policy_open_to_anyone_is_a_violation():
    role = good_role()
    role["assumeRolePolicy"] = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    [message] = run_policy(POLICY, ROLE, role)
    assert "assumeRolePolicy" in message


def test_unknown_policy_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(POLICY, IAM_POLICY, {"policy": UNKNOWN})


def test_unknown_resource_inside_policy_object_raises_instead_of_passing():
    doc = {"Version": "2012-10-17", "Statement": [statement(Resource=[UNKNOWN])]}
    with pytest.raises(UnknownValueError):
        run_policy(POLICY, IAM_POLICY, {"policy": doc})


# --- KMS key policies: who may use the key ------------------------------------------------

KEY_POLICY = iam.kms_key_policy_least_privilege
KMS_KEY = "aws:kms/key:Key"
ROOT = "arn:aws:iam::111122223333:root"
BACKUP_USER = "arn:aws:iam::111122223333:user/odoo-hosting/odoo-hosting-acme-backup"


def key_document(*extra):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Backup", "Effect": "Allow", "Principal": {"AWS": BACKUP_USER},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"}, *extra]})


def test_the_programs_own_key_policy_passes():
    from components.aws_account import render_key_policy

    rendered = render_key_policy("111122223333", {BACKUP_USER: ("kms:Encrypt", "kms:Decrypt")})
    assert run_policy(KEY_POLICY, KMS_KEY, {"policy": rendered}) == []


@pytest.mark.parametrize("resource_type", list(iam.KMS_KEY_POLICY_TYPES))
def test_named_grants_pass_and_a_grant_to_anyone_fails_on_every_key_type(resource_type):
    assert run_policy(KEY_POLICY, resource_type, {"policy": key_document()}) == []
    anyone = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    [message] = run_policy(KEY_POLICY, resource_type, {"policy": key_document(anyone)})
    assert "any principal" in message


def test_no_policy_is_awss_default_and_passes():
    assert run_policy(KEY_POLICY, KMS_KEY, {"description": "k"}) == []


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_any_principal_without_a_condition_fails(principal):
    st = {"Effect": "Allow", "Principal": principal, "Action": ["kms:Decrypt"], "Resource": "*"}
    [message] = run_policy(KEY_POLICY, KMS_KEY, {"policy": key_document(st)})
    assert "any principal ('*')" in message


def test_kms_star_to_anyone_but_the_account_root_fails():
    st = {"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": BACKUP_USER}, "Action": "kms:*", "Resource": "*"}
    [message] = run_policy(KEY_POLICY, KMS_KEY, {"policy": key_document(st)})
    assert "'Ops'" in message and BACKUP_USER in message and "kms:*" in message


@pytest.mark.parametrize("root", [ROOT, "111122223333"])
def test_kms_star_to_the_account_root_passes(root):
    st = {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "*", "Resource": "*"}
    assert run_policy(KEY_POLICY, KMS_KEY, {"policy": key_document(st)}) == []


def test_not_principal_and_not_action_fail():
    st = {"Effect": "Allow", "NotPrincipal": {"AWS": ROOT}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}
    messages = run_policy(KEY_POLICY, KMS_KEY, {"policy": key_document(st)})
    assert any("NotPrincipal" in m for m in messages) and any("NotAction" in m for m in messages)


def test_a_deny_with_wildcards_passes():
    st = {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
          "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert run_policy(KEY_POLICY, KMS_KEY, {"policy": key_document(st)}) == []


def test_an_unreadable_key_policy_fails_and_an_unknown_one_cannot_pass():
    [message] = run_policy(KEY_POLICY, KMS_KEY, {"policy": "{not json"})
    assert "not valid JSON" in message
    with pytest.raises(UnknownValueError):
        run_policy(KEY_POLICY, KMS_KEY, {"policy": UNKNOWN})
