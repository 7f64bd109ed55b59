"""The client's tamper-evident incident register and the backup bucket's access logs (INC-01, REL-01).

Register: every notification the host sends (backup failure, ban burst, any
kind) is also a JSON object under ``records/YYYY/MM/`` of its own bucket in the
client's EU region (:func:`~components.hostconfig.backup.register_bucket_name`),
written by the host's notifier with the backup identity. The bucket is
versioned and object-locked in COMPLIANCE mode for :data:`REGISTER_LOCK_DAYS`:
no one, the account root included, can delete or change a record's version
before then. The host identity may only ``PutObject`` there; deleting (which
would add a delete marker and hide a record), changing retention or the
bucket's lock, lifecycle or policy is denied to it explicitly, and a second
PUT of the same key only adds a version, the first one stays. Encrypted with
the client's backup KMS key, TLS only, no public access.

Access logs: S3 server access logging of the backup bucket into the client's
log bucket (same region; SSE-S3, the only encryption S3 log delivery
supports; a lifecycle expiring logs after :data:`ACCESS_LOG_DAYS`; written by
the S3 logging service only, for that source bucket and account).

``python -m components.register review --client ID [--region R] [--month YYYY-MM] [--bucket B]``
prints a client's register as Markdown, by month, for the periodic review.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.hostconfig.backup import (
    REGISTER_PREFIX,
    access_log_bucket_name,
    backup_bucket_name,
    register_bucket_name,
    s3_bucket_arn,
)

REGISTER_LOCK_MODE = "COMPLIANCE"
"""Not even an administrator can shorten it: the register is evidence."""
REGISTER_LOCK_DAYS = 400
"""A record survives a year of reviews plus a margin (13 months)."""
REGISTER_EXPIRY_DAYS = REGISTER_LOCK_DAYS + 30
REGISTER_ARCHIVE_DAYS = 90
"""Older records move to GLACIER_IR: still millisecond reads, so the review keeps working."""
ARCHIVE_CLASS = "GLACIER_IR"
ACCESS_LOG_DAYS = 400
ACCESS_LOG_PREFIX = "backup-bucket/"
ROLE_TAG = "odoo-hosting-role"
"""Tells the policy pack (and a reader of the AWS console) what a bucket is for."""
HOST_REGISTER_ACTIONS = ("s3:PutObject",)
HOST_DENIED_REGISTER_ACTIONS = (
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention",
    "s3:PutObjectLegalHold", "s3:PutObjectAcl", "s3:PutObjectVersionAcl",
    "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:DeleteBucket",
)


def render_register_identity_policy(register_arn: str) -> str:
    """The host identity on the register: write records, nothing else; deletion denied outright. It
    encrypts them with the client's backup key, which that key's policy grants it."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "WriteRecords", "Effect": "Allow", "Action": list(HOST_REGISTER_ACTIONS),
             "Resource": [f"{register_arn}/{REGISTER_PREFIX}*"]},
            {"Sid": "NeverDeleteOrUnlock", "Effect": "Deny", "Action": list(HOST_DENIED_REGISTER_ACTIONS),
             "Resource": [register_arn, f"{register_arn}/*"]},
        ],
    }, sort_keys=True)


def _deny_plaintext(bucket_arn: str) -> dict[str, Any]:
    return {"Sid": "DenyPlaintextTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def render_register_bucket_policy(register_arn: str, host_user_arn: str) -> str:
    """TLS only, and the host identity's deletions refused by the bucket as well."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        _deny_plaintext(register_arn),
        {"Sid": "HostNeverDeletes", "Effect": "Deny", "Principal": {"AWS": host_user_arn},
         "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention",
                    "s3:BypassGovernanceRetention"], "Resource": [f"{register_arn}/*"]},
    ]}, sort_keys=True)


def render_log_bucket_policy(log_arn: str, source_bucket_arn: str) -> str:
    """Only S3's log delivery writes, for the backup bucket (bucket names are global); TLS only."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        _deny_plaintext(log_arn),
        {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": [f"{log_arn}/{ACCESS_LOG_PREFIX}*"],
         "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn}}},
    ]}, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class IncidentRegisterArgs:
    """Arguments of :class:`IncidentRegister`."""

    client_id: str
    provider: aws.Provider
    """The backup storage's provider (the client's EU region)."""
    kms_key_arn: pulumi.Input[str]
    """The client's backup KMS key (the host identity already encrypts with it)."""
    host_user_name: pulumi.Input[str]
    host_user_arn: pulumi.Input[str]
    """Known at preview, and depending on the user (the bucket policy names it as a principal)."""
    backup_bucket_id: pulumi.Input[str]
    backup_bucket_arn: pulumi.Input[str]


@dataclass(frozen=True)
class BucketCompanions:
    ownership: aws.s3.BucketOwnershipControls
    public_block: aws.s3.BucketPublicAccessBlock
    versioning: aws.s3.BucketVersioning
    encryption: aws.s3.BucketServerSideEncryptionConfiguration


def bucket_companions(name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions, *,
                      kms_key_arn: pulumi.Input[str] | None) -> BucketCompanions:
    """Owner-enforced, never public, versioned, encrypted: with the client's KMS key, or SSE-S3 when
    ``kms_key_arn`` is None (the only encryption S3 server access log delivery accepts)."""
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership", bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=opts)
    public_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=opts)
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning", bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=opts)
    default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn) if kms_key_arn is not None else \
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256")
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=default, bucket_key_enabled=True if kms_key_arn else None)],
        opts=opts)
    return BucketCompanions(ownership, public_block, versioning, encryption)


def _expiring_rule(rule_id: str, prefix: str, days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """Archive after :data:`REGISTER_ARCHIVE_DAYS` (GLACIER_IR), expire after ``days``, abort stale uploads."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule_id, status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        transitions=[aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
            days=REGISTER_ARCHIVE_DAYS, storage_class=ARCHIVE_CLASS)],
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=days),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=1))


class IncidentRegister(pulumi.ComponentResource):
    """The object-locked register bucket, the access-log bucket and the backup bucket's logging."""

    register_bucket: pulumi.Output[str]
    log_bucket: pulumi.Output[str]

    def __init__(self, name: str, args: IncidentRegisterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:backup:IncidentRegister", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        kept = pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True, retain_on_delete=True)

        register = aws.s3.Bucket(f"{name}-bucket", bucket=register_bucket_name(args.client_id),
                                 object_lock_enabled=True, force_destroy=False,
                                 tags={ROLE_TAG: "incident-register"}, opts=kept)
        register_arn = s3_bucket_arn(register_bucket_name(args.client_id))
        companions = bucket_companions(name, register, child, kms_key_arn=args.kms_key_arn)
        versioning, ownership, public_block = companions.versioning, companions.ownership, companions.public_block
        after_versioning = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[versioning])
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock", bucket=register.id, object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=REGISTER_LOCK_MODE, days=REGISTER_LOCK_DAYS)),
            opts=after_versioning)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=register.id,
            rules=[_expiring_rule("records-archive-then-expire", REGISTER_PREFIX, REGISTER_EXPIRY_DAYS)],
            opts=after_versioning)
        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=register.id,
            policy=pulumi.Output.from_input(args.host_user_arn).apply(
                lambda user_arn: render_register_bucket_policy(register_arn, user_arn)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[public_block, ownership]))
        aws.iam.UserPolicy(
            f"{name}-host-policy", user=args.host_user_name,
            policy=render_register_identity_policy(register_arn),
            opts=child)

        # Object lock on (S3 refuses log delivery into a bucket with a default retention, so none).
        logs = aws.s3.Bucket(f"{name}-logs", bucket=access_log_bucket_name(args.client_id), force_destroy=False,
                             object_lock_enabled=True, tags={ROLE_TAG: "access-log-target"}, opts=kept)
        log = bucket_companions(f"{name}-logs", logs, child, kms_key_arn=None)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-logs-lifecycle", bucket=logs.id,
            rules=[_expiring_rule("access-logs-archive-then-expire", "", ACCESS_LOG_DAYS)],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[log.versioning]))
        log_policy = aws.s3.BucketPolicy(
            f"{name}-logs-policy", bucket=logs.id,
            policy=render_log_bucket_policy(s3_bucket_arn(access_log_bucket_name(args.client_id)),
                                            s3_bucket_arn(backup_bucket_name(args.client_id))),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=[log.public_block, log.ownership]))
        aws.s3.BucketLogging(
            f"{name}-backup-access-logging", bucket=args.backup_bucket_id, target_bucket=logs.id,
            target_prefix=ACCESS_LOG_PREFIX,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[log_policy]))

        self.register_bucket = register.bucket
        self.log_bucket = logs.bucket
        self.register_outputs({"register_bucket": self.register_bucket, "log_bucket": self.log_bucket})


# --- the periodic review -------------------------------------------------------------------------

def load_records(s3: Any, bucket: str, month: str | None = None) -> list[dict[str, Any]]:
    """Every record (each object version: an overwrite attempt shows as a second entry), oldest first."""
    prefix = REGISTER_PREFIX + (month.replace("-", "/") + "/" if month else "")
    records = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            try:
                record = json.loads(body["Body"].read())
            except ValueError:
                record = {"kind": "unreadable", "subject": "(not JSON)"}
            record["_key"] = version["Key"]
            record["_retain_until"] = str(body.get("ObjectLockRetainUntilDate") or "")
            record["_lock_mode"] = body.get("ObjectLockMode") or ""
            records.append(record)
        for marker in page.get("DeleteMarkers", []):
            records.append({"_key": marker["Key"], "kind": "DELETE MARKER", "time": str(marker["LastModified"]),
                            "subject": "someone tried to hide this record", "notified": None})
    return sorted(records, key=lambda r: (str(r.get("time", "")), r["_key"]))


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def review_markdown(client_id: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The register as Markdown, one section per month: what happened, when, whether the client was told."""
    lines = [f"# Incident register of {client_id}", ""]
    if not records:
        return "\n".join(lines + ["No records.", ""])
    months: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        months.setdefault(str(record.get("time", ""))[:7] or "unknown", []).append(record)
    for month, entries in months.items():
        told = sum(1 for e in entries if e.get("notified") is True)
        lines += [f"## {month}", "", f"{len(entries)} records, {told} notified to the client's contacts.", "",
                  "| when (UTC) | host | kind | what | client notified | locked until |",
                  "|---|---|---|---|---|---|"]
        for e in entries:
            notified = {True: "yes", False: f"NO ({_cell(e.get('error') or 'not sent')})", None: "-"}.get(
                e.get("notified"), "?")
            lines.append(f"| {_cell(e.get('time', ''))} | {_cell(e.get('host', ''))} | {_cell(e.get('kind', ''))} "
                         f"| {_cell(e.get('subject', ''))} | {notified} | "
                         f"{_cell(e.get('_lock_mode', ''))} {_cell(e.get('_retain_until', ''))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.register")
    sub = parser.add_subparsers(dest="command", required=True)
    review = sub.add_parser("review", help="print a client's register as Markdown, by month")
    review.add_argument("--client", required=True)
    review.add_argument("--region", default="eu-central-1", help="the client's backupRegion")
    review.add_argument("--month", help="YYYY-MM (default: every month)")
    review.add_argument("--bucket", help="the register bucket (default: the client's, by name)")
    review.add_argument("--endpoint-url", help="an S3 stand-in (tests)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    import boto3

    s3 = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint_url)
    records = load_records(s3, args.bucket or register_bucket_name(args.client), args.month)
    sys.stdout.write(review_markdown(args.client, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
