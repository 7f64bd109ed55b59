"""BKP-04 / REL-01: S3 buckets and their v7 companion resources are hardened."""

from __future__ import annotations

import json

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import buckets

from .conftest import UNKNOWN, run_policy, run_stack_policy, stack_resource

SETTINGS = buckets.s3_bucket_settings
COMPLETE = buckets.s3_bucket_hardening_complete

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
VERSIONING_V2 = "aws:s3/bucketVersioningV2:BucketVersioningV2"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"

BUCKET_NAME = "acme-backups"


def good_bucket():
    return {"bucket": BUCKET_NAME, "objectLockEnabled": True, "tags": {"client": "acme"}}


def good_versioning():
    return {"bucket": BUCKET_NAME, "versioningConfiguration": {"status": "Enabled"}}


def good_sse():
    return {"bucket": BUCKET_NAME, "rules": [{"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:eu-central-1:111122223333:key/abcd"},
        "bucketKeyEnabled": True}]}


def good_pab():
    return {"bucket": BUCKET_NAME, "blockPublicAcls": True, "blockPublicPolicy": True,
            "ignorePublicAcls": True, "restrictPublicBuckets": True}


def good_ownership():
    return {"bucket": BUCKET_NAME, "rule": {"objectOwnership": "BucketOwnerEnforced"}}


def good_lifecycle():
    return {"bucket": BUCKET_NAME, "rules": [
        {"id": "backups", "status": "Enabled", "filter": {"prefix": ""},
         "transitions": [{"days": 30, "storageClass": "GLACIER"}],
         "expiration": {"days": 365},
         "noncurrentVersionExpiration": {"noncurrentDays": 30},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}},
    ]}


def good_lock():
    return {"bucket": BUCKET_NAME, "rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 30}}}


def tls_only_document():
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET_NAME}", f"arn:aws:s3:::{BUCKET_NAME}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def good_policy():
    return {"bucket": BUCKET_NAME, "policy": json.dumps(tls_only_document())}


COMPANIONS = {
    VERSIONING: good_versioning, SSE: good_sse, PAB: good_pab, OWNERSHIP: good_ownership,
    LIFECYCLE: good_lifecycle, LOCK: good_lock, POLICY: good_policy,
}


# --- resource policy: each piece on its own ---------------------------------------

@pytest.mark.parametrize("resource_type,make", [(BUCKET, good_bucket), (BUCKET_V2, good_bucket)]
                         + list(COMPANIONS.items()), ids=lambda x: x if isinstance(x, str) else x.__name__)
def test_compliant_baseline_passes(resource_type, make):
    assert run_policy(SETTINGS, resource_type, make()) == []


def test_bucket_with_force_destroy_is_a_violation():
    bucket = good_bucket()
    bucket["forceDestroy"] = True
    [message] = run_policy(SETTINGS, BUCKET, bucket)
    assert "forceDestroy" in message


def test_bucket_without_object_lock_is_a_violation():
    bucket = good_bucket()
    del bucket["objectLockEnabled"]
    [message] = run_policy(SETTINGS, BUCKET, bucket)
    assert "objectLockEnabled" in message


def test_bucket_object_lock_as_string_true_passes():
    bucket = good_bucket()
    bucket["objectLockEnabled"] = "true"
    assert run_policy(SETTINGS, BUCKET, bucket) == []


def test_versioning_suspended_is_a_violation():
    props = good_versioning()
    props["versioningConfiguration"]["status"] = "Suspended"
    [message] = run_policy(SETTINGS, VERSIONING, props)
    assert "Suspended" in message and "Enabled" in message


def test_versioning_v2_type_is_judged_too():
    props = good_versioning()
    props["versioningConfiguration"]["status"] = "Disabled"
    assert run_policy(SETTINGS, VERSIONING_V2, props)


def test_sse_with_aes256_is_only_a_baseline_pass_for_the_resource_policy():
    # Which encryption a client's bucket needs depends on what it receives: the stack policy judges it.
    props = good_sse()
    props["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}
    assert run_policy(SETTINGS, SSE, props) == []
    props["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "none"}
    assert run_policy(SETTINGS, SSE, props)


def _with_sse(default, resources=None):
    resources = resources or full_stack()
    for r in resources:
        if r.resource_type == SSE:
            r.props["rules"][0]["applyServerSideEncryptionByDefault"] = default
    return resources


def test_client_backup_bucket_with_aes256_is_a_violation():
    [message] = run_stack_policy(COMPLETE, _with_sse({"sseAlgorithm": "AES256"}))
    assert "AES256" in message and "aws:kms" in message


def test_sse_kms_without_key_id_is_a_violation():
    [message] = run_stack_policy(COMPLETE, _with_sse({"sseAlgorithm": "aws:kms"}))
    assert "kmsMasterKeyId" in message


def _unknown_key_stack(deps):
    resources = full_stack(skip=(SSE,))
    props = good_sse()
    props["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = UNKNOWN
    resources.append(stack_resource(SSE, props, "acme-sse", property_dependencies={"rules": deps}))
    return resources


def test_sse_with_unknown_key_id_from_no_stack_key_cannot_be_checked():
    with pytest.raises(UnknownValueError, match="kmsMasterKeyId"):
        run_stack_policy(COMPLETE, _unknown_key_stack([]))


def test_sse_with_unknown_key_id_of_the_stacks_own_kms_key_is_judged():
    key = stack_resource("aws:kms/key:Key", {"enableKeyRotation": True}, "acme-key")
    assert run_stack_policy(COMPLETE, _unknown_key_stack([key]) + [key]) == []
    other = stack_resource("aws:s3/bucket:Bucket", good_bucket(), "elsewhere")
    with pytest.raises(UnknownValueError):
        run_stack_policy(COMPLETE, _unknown_key_stack([other]) + [key])


LOGGING = "aws:s3/bucketLogging:BucketLogging"


def log_target_stack(sse="AES256", retention=False, by="dependency"):
    """The backup bucket's access logs go into a second bucket with every companion."""
    resources = full_stack()
    logs = stack_resource(BUCKET, {**good_bucket(), "bucket": "acme-logs"}, "acme-logs")
    resources.append(logs)
    for resource_type, make in COMPANIONS.items():
        if resource_type == LOCK and not retention:
            continue
        props = {**make(), "bucket": "acme-logs"}
        if resource_type == SSE:
            props["rules"] = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": sse}}]
        resources.append(stack_resource(resource_type, props, f"logs-{resource_type.split(':')[-1]}"))
    target = {"bucket": BUCKET_NAME, "targetBucket": UNKNOWN if by == "dependency" else "acme-logs",
              "targetPrefix": "access/"}
    deps = {"targetBucket": [logs]} if by == "dependency" else {}
    resources.append(stack_resource(LOGGING, target, "acme-logging", property_dependencies=deps))
    return resources


@pytest.mark.parametrize("by", ["dependency", "name"])
def test_access_log_target_with_sse_s3_and_no_retention_passes(by):
    assert run_stack_policy(COMPLETE, log_target_stack(by=by)) == []


def test_access_log_target_with_kms_is_a_violation():
    [message] = run_stack_policy(COMPLETE, log_target_stack(sse="aws:kms"))
    assert "access logs" in message and "AES256" in message


def test_access_log_target_with_a_default_retention_is_a_violation():
    [message] = run_stack_policy(COMPLETE, log_target_stack(retention=True))
    assert "default retention" in message and "'acme-logs'" in message


def test_a_bucket_without_logging_into_it_still_needs_kms_and_retention():
    resources = [r for r in log_target_stack() if r.resource_type != LOGGING]
    messages = run_stack_policy(COMPLETE, resources)
    assert any("aws:kms" in m for m in messages) and any("object lock" in m for m in messages)


@pytest.mark.parametrize("flag", buckets.PUBLIC_ACCESS_FLAGS)
def test_public_access_block_with_a_false_flag_is_a_violation(flag):
    props = good_pab()
    props[flag] = False
    [message] = run_policy(SETTINGS, PAB, props)
    assert flag in message


def test_public_access_block_with_a_missing_flag_is_a_violation():
    props = good_pab()
    del props["restrictPublicBuckets"]
    assert run_policy(SETTINGS, PAB, props)


def test_public_access_block_flag_as_string_true_passes():
    props = good_pab()
    props["blockPublicAcls"] = "true"
    assert run_policy(SETTINGS, PAB, props) == []


@pytest.mark.parametrize("owner", ["BucketOwnerPreferred", "ObjectWriter"])
def test_ownership_other_than_enforced_is_a_violation(owner):
    props = good_ownership()
    props["rule"]["objectOwnership"] = owner
    [message] = run_policy(SETTINGS, OWNERSHIP, props)
    assert "BucketOwnerEnforced" in message


def test_lifecycle_transition_to_standard_ia_only_is_a_violation():
    props = good_lifecycle()
    props["rules"][0]["transitions"] = [{"days": 30, "storageClass": "STANDARD_IA"}]
    [message] = run_policy(SETTINGS, LIFECYCLE, props)
    assert "archive" in message


def test_lifecycle_transition_at_day_zero_is_a_violation():
    props = good_lifecycle()
    props["rules"][0]["transitions"] = [{"days": 0, "storageClass": "DEEP_ARCHIVE"}]
    assert run_policy(SETTINGS, LIFECYCLE, props)


def test_lifecycle_archive_class_in_lower_case_passes():
    props = good_lifecycle()
    props["rules"][0]["transitions"] = [{"days": "30", "storageClass": "glacier_ir"}]
    assert run_policy(SETTINGS, LIFECYCLE, props) == []


def test_lifecycle_without_expiration_is_a_violation():
    props = good_lifecycle()
    del props["rules"][0]["expiration"]
    [message] = run_policy(SETTINGS, LIFECYCLE, props)
    assert "expiration" in message


def test_lifecycle_without_abort_incomplete_uploads_is_a_violation():
    props = good_lifecycle()
    del props["rules"][0]["abortIncompleteMultipartUpload"]
    [message] = run_policy(SETTINGS, LIFECYCLE, props)
    assert "abortIncompleteMultipartUpload" in message


def test_lifecycle_rule_disabled_counts_for_nothing():
    props = good_lifecycle()
    props["rules"][0]["status"] = "Disabled"
    assert len(run_policy(SETTINGS, LIFECYCLE, props)) == 3


def test_lifecycle_pieces_spread_over_several_rules_pass():
    props = good_lifecycle()
    rule = props["rules"][0]
    abort = {"id": "abort", "status": "Enabled", "filter": {},
             "abortIncompleteMultipartUpload": rule.pop("abortIncompleteMultipartUpload")}
    props["rules"].append(abort)
    assert run_policy(SETTINGS, LIFECYCLE, props) == []


def test_object_lock_without_default_retention_is_a_violation():
    props = good_lock()
    del props["rule"]
    [message] = run_policy(SETTINGS, LOCK, props)
    assert "defaultRetention" in message


def test_object_lock_retention_without_days_or_years_is_a_violation():
    props = good_lock()
    del props["rule"]["defaultRetention"]["days"]
    assert run_policy(SETTINGS, LOCK, props)


def test_object_lock_retention_in_years_passes():
    props = good_lock()
    props["rule"]["defaultRetention"] = {"mode": "COMPLIANCE", "years": 1}
    assert run_policy(SETTINGS, LOCK, props) == []


def test_bucket_policy_without_tls_deny_is_a_violation():
    props = good_policy()
    doc = tls_only_document()
    doc["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    props["policy"] = json.dumps(doc)
    [message] = run_policy(SETTINGS, POLICY, props)
    assert "aws:SecureTransport" in message


def test_bucket_policy_tls_deny_as_boolean_and_object_passes():
    doc = tls_only_document()
    doc["Statement"] = doc["Statement"][0]  # a single statement, not a list
    doc["Statement"]["Condition"] = {"Bool": {"aws:SecureTransport": False}}
    assert run_policy(SETTINGS, POLICY, {"bucket": BUCKET_NAME, "policy": doc}) == []


def test_bucket_policy_allowing_anyone_is_a_violation():
    doc = tls_only_document()
    doc["Statement"].append({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                             "Resource": f"arn:aws:s3:::{BUCKET_NAME}/*"})
    [message] = run_policy(SETTINGS, POLICY, {"bucket": BUCKET_NAME, "policy": json.dumps(doc)})
    assert "any principal" in message


def test_bucket_policy_that_is_not_json_is_a_violation():
    assert run_policy(SETTINGS, POLICY, {"bucket": BUCKET_NAME, "policy": "{not json"})


def test_inline_v6_style_aes256_encryption_on_a_client_bucket_is_a_violation():
    bucket = good_bucket()
    bucket["serverSideEncryptionConfiguration"] = {
        "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}
    [message] = run_stack_policy(COMPLETE, full_stack(skip=(SSE,), bucket_props=bucket))
    assert "AES256" in message


def test_inline_bucket_v2_versioning_disabled_is_a_violation():
    bucket = good_bucket()
    bucket["versionings"] = [{"enabled": False}]
    assert run_policy(SETTINGS, BUCKET_V2, bucket)


# --- stack policy: every bucket has every piece ------------------------------------

def full_stack(skip=(), bucket_props=None, by="name"):
    """A bucket plus each companion; ``by`` says how companions refer to the bucket."""
    bucket = stack_resource(BUCKET, bucket_props or good_bucket(), "acme-backups")
    resources = [bucket]
    for resource_type, make in COMPANIONS.items():
        if resource_type in skip:
            continue
        props = make()
        deps = {}
        if by == "dependency":
            props["bucket"] = UNKNOWN  # the bucket's id, unknown at preview
            deps = {"bucket": [bucket]}
        elif by == "logical-name":
            props["bucket"] = "acme-backups"
        resources.append(stack_resource(resource_type, props, f"acme-{resource_type.split(':')[-1]}",
                                        property_dependencies=deps))
    return resources


@pytest.mark.parametrize("by", ["name", "dependency", "logical-name"])
def test_bucket_with_every_companion_passes(by):
    assert run_stack_policy(COMPLETE, full_stack(by=by)) == []


@pytest.mark.parametrize("missing,words", [
    (VERSIONING, "versioning"), (SSE, "SSE-KMS"), (PAB, "public access block"), (OWNERSHIP, "ownership"),
    (LIFECYCLE, "lifecycle"), (LOCK, "object lock"), (POLICY, "TLS-only bucket policy"),
])
def test_bucket_missing_a_companion_is_a_violation_naming_the_bucket(missing, words):
    [message] = run_stack_policy(COMPLETE, full_stack(skip=(missing,)))
    assert "'acme-backups'" in message and words in message


def test_bare_bucket_reports_every_missing_piece():
    resources = [stack_resource(BUCKET, good_bucket(), "acme-backups")]
    assert len(run_stack_policy(COMPLETE, resources)) == len(buckets.PIECES)


def test_companion_of_another_bucket_does_not_count():
    resources = full_stack(skip=(SSE,))
    resources.append(stack_resource(SSE, {**good_sse(), "bucket": "globex-backups"}, "other-sse"))
    [message] = run_stack_policy(COMPLETE, resources)
    assert "SSE-KMS" in message


def test_companion_depending_on_another_bucket_does_not_count():
    other = stack_resource(BUCKET, {**good_bucket(), "bucket": "globex-backups"}, "globex-backups")
    resources = full_stack(skip=(VERSIONING,)) + [other]
    resources.append(stack_resource(VERSIONING, {**good_versioning(), "bucket": UNKNOWN}, "other-versioning",
                                    property_dependencies={"bucket": [other]}))
    messages = run_stack_policy(COMPLETE, resources)
    assert any("'acme-backups'" in m and "versioning" in m for m in messages)


def test_inline_v6_style_settings_count_as_companions():
    bucket = good_bucket()
    bucket["versioning"] = {"enabled": True}
    bucket["serverSideEncryptionConfiguration"] = {"rule": {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:eu-central-1:1:key/x"}}}
    assert run_stack_policy(COMPLETE, full_stack(skip=(VERSIONING, SSE), bucket_props=bucket)) == []


def test_bucket_v2_is_judged_like_bucket():
    resources = [stack_resource(BUCKET_V2, good_bucket(), "acme-backups")]
    assert run_stack_policy(COMPLETE, resources)


@pytest.mark.parametrize("acl", ["public-read", "PUBLIC-READ-WRITE", "authenticated-read"])
def test_bucket_with_public_canned_acl_is_a_violation(acl):
    bucket = good_bucket()
    bucket["acl"] = acl
    [message] = run_policy(SETTINGS, BUCKET, bucket)
    assert "acl" in message


def test_bucket_with_private_acl_passes():
    bucket = good_bucket()
    bucket["acl"] = "private"
    assert run_policy(SETTINGS, BUCKET, bucket) == []
