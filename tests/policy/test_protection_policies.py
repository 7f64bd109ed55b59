"""REL-01 (protect on data-bearing resources) and BKP-04 (KMS key rotation)."""

from __future__ import annotations

import pytest

from odoo_hosting_policies import protection

from .conftest import run_policy

KMS_KEY = "aws:kms/key:Key"

PROTECTED = [
    (protection.s3_bucket_protected, "aws:s3/bucket:Bucket", {"bucket": "acme-backups"}),
    (protection.s3_bucket_protected, "aws:s3/bucketV2:BucketV2", {"bucket": "acme-backups"}),
    (protection.kms_key_protected, KMS_KEY, {"enableKeyRotation": True}),
    (protection.vault_mount_protected, "vault:index/mount:Mount", {"path": "odoo-hosting", "type": "kv-v2"}),
]


@pytest.mark.parametrize("policy,resource_type,props", PROTECTED, ids=lambda x: getattr(x, "name", None))
def test_protected_data_resource_passes(policy, resource_type, props):
    assert run_policy(policy, resource_type, props, protect=True) == []


@pytest.mark.parametrize("policy,resource_type,props", PROTECTED, ids=lambda x: getattr(x, "name", None))
def test_unprotected_data_resource_is_a_violation(policy, resource_type, props):
    [message] = run_policy(policy, resource_type, props, protect=False)
    assert "protect" in message


def test_protect_policies_ignore_other_types():
    assert run_policy(protection.s3_bucket_protected, KMS_KEY, {}) == []


def test_protect_policy_descriptions_say_retain_on_delete_is_not_visible():
    assert "retain_on_delete" in protection.s3_bucket_protected.description


def good_key():
    return {"description": "acme backups", "enableKeyRotation": True, "deletionWindowInDays": 30,
            "tags": {"client": "acme"}}


def test_key_with_rotation_passes():
    assert run_policy(protection.kms_key_rotation, KMS_KEY, good_key()) == []


@pytest.mark.parametrize("value", [None, False, "false"])
def test_key_without_rotation_is_a_violation(value):
    key = good_key()
    key["enableKeyRotation"] = value
    [message] = run_policy(protection.kms_key_rotation, KMS_KEY, key)
    assert "enableKeyRotation" in message


def test_asymmetric_key_is_not_asked_to_rotate():
    key = good_key()
    key.update(enableKeyRotation=False, customerMasterKeySpec="RSA_4096", keyUsage="SIGN_VERIFY")
    assert run_policy(protection.kms_key_rotation, KMS_KEY, key) == []


def test_key_with_short_deletion_window_is_a_violation():
    key = good_key()
    key["deletionWindowInDays"] = "5"
    [message] = run_policy(protection.kms_key_rotation, KMS_KEY, key)
    assert "deletionWindowInDays" in message


def test_key_with_default_deletion_window_passes():
    key = good_key()
    del key["deletionWindowInDays"]
    assert run_policy(protection.kms_key_rotation, KMS_KEY, key) == []
