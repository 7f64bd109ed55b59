"""The incident register and the access logs under Pulumi mocks, and the policy documents they get."""

from __future__ import annotations

import json

from components.hostconfig import NOTIFY_SCRIPT_PATH, bundle_files
from components.hostconfig.backup import access_log_bucket_name, backup_bucket_name, register_bucket_name
from components.register import (
    ACCESS_LOG_PREFIX,
    REGISTER_LOCK_DAYS,
    render_log_bucket_policy,
    render_register_identity_policy,
    review_markdown,
)
from tests.conftest import example_settings


def _named(program, type_, suffix):
    (found,) = [r for r in program.of_type(type_) if r.name.endswith(suffix)]
    return found


def test_register_bucket_is_compliance_locked_versioned_encrypted_in_the_backup_region(built):
    settings, program = built
    bucket = _named(program, "aws:s3/bucket:Bucket", "-register-bucket")
    assert bucket.inputs["bucket"] == register_bucket_name(settings.client_id)
    assert bucket.inputs["objectLockEnabled"] is True and bucket.protect and bucket.retain_on_delete
    assert "backup-aws" in bucket.provider  # the client's EU backup region
    lock = _named(program, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "-register-object-lock")
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": REGISTER_LOCK_DAYS}
    versioning = _named(program, "aws:s3/bucketVersioning:BucketVersioning", "-register-versioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    sse = _named(program, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "-register-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    block = _named(program, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "-register-public-access-block")
    assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets"))


def test_host_identity_may_only_write_records(built):
    _settings, program = built
    policy = json.loads(_named(program, "aws:iam/userPolicy:UserPolicy", "-register-host-policy").inputs["policy"])
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    s3_allows = [a for s in allows for a in s["Action"] if a.startswith("s3:")]
    assert s3_allows == ["s3:PutObject"]
    assert all(r.endswith("/records/*") for s in allows if "s3:PutObject" in s["Action"] for r in s["Resource"])
    denied = {a for s in denies for a in s["Action"]}
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention",
            "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"} <= denied
    bucket_policy = json.loads(_named(program, "aws:s3/bucketPolicy:BucketPolicy", "-register-policy").inputs["policy"])
    sids = {s["Sid"] for s in bucket_policy["Statement"]}
    assert sids == {"DenyPlaintextTransport", "HostNeverDeletes"}


def test_identity_policy_document_never_allows_a_delete():
    doc = json.loads(render_register_identity_policy("arn:aws:s3:::r"))
    for statement in doc["Statement"]:
        if statement["Effect"] == "Allow":
            assert not any("Delete" in a or "Retention" in a or a.endswith("*") for a in statement["Action"])


def test_backup_bucket_access_logs_go_to_the_encrypted_expiring_log_bucket(built):
    settings, program = built
    logs = _named(program, "aws:s3/bucket:Bucket", "-register-logs")
    assert logs.inputs["bucket"] == access_log_bucket_name(settings.client_id)
    logging = program.one("aws:s3/bucketLogging:BucketLogging")
    backup = _named(program, "aws:s3/bucket:Bucket", "-backup-bucket")
    assert backup.inputs["bucket"] == backup_bucket_name(settings.client_id)
    assert logging.inputs["bucket"] == backup.id and logging.inputs["targetBucket"] == logs.id
    assert logging.inputs["targetPrefix"] == ACCESS_LOG_PREFIX
    sse = _named(program, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                 "-register-logs-encryption")
    # S3 log delivery writes SSE-S3 only; SSE-KMS targets are not supported by AWS.
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    lifecycle = _named(program, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                       "-register-logs-lifecycle")
    assert lifecycle.inputs["rules"][0]["expiration"]["days"] > 0
    policy = json.loads(_named(program, "aws:s3/bucketPolicy:BucketPolicy", "-register-logs-policy").inputs["policy"])
    (writer,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert writer["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    doc = json.loads(render_log_bucket_policy("arn:aws:s3:::logs", "arn:aws:s3:::backup"))
    (writer,) = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert writer["Condition"] == {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::backup"}}
    assert writer["Resource"] == [f"arn:aws:s3:::logs/{ACCESS_LOG_PREFIX}*"] and writer["Action"] == "s3:PutObject"


def test_the_notifier_names_the_clients_register():
    settings = example_settings("example-public")
    (notifier,) = [f for f in bundle_files(settings) if f["path"] == NOTIFY_SCRIPT_PATH]
    url = f"https://s3.{settings.backup.region}.amazonaws.com/{register_bucket_name(settings.client_id)}/records"
    assert f'REGISTER_URL = "{url}"' in notifier["content"]


def test_review_groups_by_month_and_says_who_was_told():
    records = [
        {"time": "2026-11-30T23:59:00Z", "host": "h", "kind": "ban-burst", "subject": "12 bans", "notified": True},
        {"time": "2026-12-01T01:30:00Z", "host": "h", "kind": "backup-failure", "subject": "backup | FAILED",
         "notified": False, "error": "HTTP 403"},
        {"time": "2026-12-02T00:00:00Z", "kind": "DELETE MARKER", "subject": "someone tried to hide this record",
         "notified": None},
    ]
    text = review_markdown("acme", records)
    assert text.index("## 2026-11") < text.index("## 2026-12")
    assert "1 records, 1 notified" in text and "2 records, 0 notified" in text
    assert "backup \\| FAILED | NO (HTTP 403)" in text
    assert "DELETE MARKER" in text
    assert review_markdown("acme", []).endswith("No records.\n")
