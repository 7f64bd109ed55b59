"""The client's backup storage: a hardened EU bucket, its KMS key and its IAM identity (BKP-02..05).

Why the lifecycle judges *noncurrent* versions. restic's repository is a
live, deduplicated structure: today's snapshot still references pack files
written months ago. Moving *current* objects to GLACIER would make today's
restore (and ``restic check``) need a slow archive retrieval, and expiring
them would corrupt the repository. So current objects (the live repository)
stay in STANDARD, the fast-restore class. When ``restic forget --prune``
drops old snapshots it deletes their packs; versioning plus object lock keep
those as noncurrent versions, which is where old backups go: STANDARD for
``backupFastRestoreDays``, then GLACIER, then DEEP_ARCHIVE, expired after
``backupRetentionDays``. An operator can still bring an old state back by
restoring those versions (README, "Restoring").

Credentials: one IAM user per client with two access keys in the two
rotation slots of :mod:`components.rotation`; each key is replaced (deleted
first: IAM allows two keys per user) when its slot's generation changes, and
Vault holds the current one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_account import account_id, known_user_arn, render_key_policy
from components.hostconfig.backup import backup_bucket_name, repository_url, s3_bucket_arn
from components.hostconfig.bundle import bundle_key, bundle_sha256
from components.register import IncidentRegister, IncidentRegisterArgs, bucket_companions
from components.rotation import SLOTS, Rotation
from components.secrets import SECRET_NAME_AWS_KEY_ID, SECRET_NAME_AWS_SECRET

ARCHIVE_CLASS = "GLACIER"
DEEP_ARCHIVE_CLASS = "DEEP_ARCHIVE"
LOCK_MODE = "GOVERNANCE"
"""GOVERNANCE: the backup identity cannot shorten or bypass the lock; an
administrator with s3:BypassGovernanceRetention can, after review."""
KMS_DELETION_WINDOW_DAYS = 30
ABORT_INCOMPLETE_UPLOAD_DAYS = 1

# What restic needs, and nothing else (BKP-05).
RESTIC_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation")
RESTIC_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
"""DeleteObject without a version id only adds a delete marker in a versioned
bucket: the locked version stays. Deleting versions is denied outright."""
DENIED_OBJECT_ACTIONS = ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectRetention",
                         "s3:PutObjectLegalHold")
USER_PATH = "/odoo-hosting/"
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def backup_user_name(client_id: str) -> str:
    return f"odoo-hosting-{client_id}-backup"


def render_identity_policy(bucket_arn: str) -> str:
    """The backup identity's policy: the client's bucket only, no wildcard action or resource. Its use
    of the client's KMS key is granted in the key's policy (:func:`render_backup_key_policy`), and
    publishing to the incident topic by the incident channel (INC-01)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListTheBucket", "Effect": "Allow", "Action": list(RESTIC_BUCKET_ACTIONS),
             "Resource": [bucket_arn]},
            {"Sid": "ReadWriteObjects", "Effect": "Allow", "Action": list(RESTIC_OBJECT_ACTIONS),
             "Resource": [f"{bucket_arn}/*"]},
            {"Sid": "NeverDeleteVersions", "Effect": "Deny", "Action": list(DENIED_OBJECT_ACTIONS),
             "Resource": [f"{bucket_arn}/*"]},
        ],
    }, sort_keys=True)


def render_backup_key_policy(account: str, identity_arn: str) -> str:
    """The client's backup key: administered by the account, used by the backup identity only
    (restic's objects, the register's records and the host bundle are SSE-KMS with it)."""
    return render_key_policy(account, {identity_arn: KMS_ACTIONS})


def render_bucket_policy(bucket_arn: str) -> str:
    """Deny every request that is not over TLS (BKP-04)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyPlaintextTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class BackupStorageArgs:
    """Arguments of :class:`BackupStorage`."""

    client_id: str
    """Names the bucket, KMS alias and IAM user."""
    region: str
    """AWS region (EU) the explicit provider is pinned to (BKP-02)."""
    fast_restore_days: int
    """Days noncurrent backup objects stay in STANDARD before GLACIER."""
    deep_archive_days: int
    """Days after which they move on to DEEP_ARCHIVE."""
    retention_days: int
    """Days after which they expire."""
    lock_days: int
    """Object lock default retention (GOVERNANCE)."""
    rotation: Rotation
    """Today's place in the access-key rotation schedule."""
    tags: Mapping[str, str]
    """Tags every AWS resource carries (the provider's default tags, ISO-01)."""
    host_bundle: str | None = None
    """The host bundle (components.hostconfig.render_bundle): stored under ``host-bundle/<sha256>.yaml``,
    where the host fetches it with this identity's credential."""

    def __post_init__(self) -> None:
        if not self.region.startswith("eu-"):
            raise ValueError(f"region {self.region!r} is not in the EU")
        if not 0 < self.fast_restore_days < self.deep_archive_days < self.retention_days:
            raise ValueError("need 0 < fast_restore_days < deep_archive_days < retention_days")
        if not 0 < self.lock_days <= self.retention_days:
            raise ValueError("need 0 < lock_days <= retention_days")
        if self.tags.get("client") != self.client_id:
            raise ValueError("tags must carry client=<client_id>")


class BackupStorage(pulumi.ComponentResource):
    """The client's encrypted backup bucket in the EU and the only identity that may use it."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    repository: pulumi.Output[str]
    """restic repository URL (``s3:https://s3.<region>.amazonaws.com/<bucket>/restic``)."""
    user_name: pulumi.Output[str]
    user_arn: pulumi.Output[str]
    """The backup identity's ARN, known at preview (the incident channel lets it publish)."""
    register_bucket: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    current_credentials: pulumi.Output[dict[str, str]]
    """Secret map: access key id and secret of the slot in use now."""

    def __init__(self, name: str, args: BackupStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:backup:BackupStorage", name, None, opts)
        user_name = backup_user_name(args.client_id)
        provider = aws.Provider(
            f"{name}-aws",
            region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=dict(args.tags)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        def data() -> pulumi.ResourceOptions:
            # Data-bearing: a destroy or replacement must never take backups with it (REL-01).
            return pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True)

        # The identity first: the key's policy names it, and AWS refuses a principal that does not exist.
        account = account_id(provider)
        user = aws.iam.User(f"{name}-user", name=user_name, path=USER_PATH, opts=child)
        self.user_arn = known_user_arn(user, account, USER_PATH, user_name)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"odoo-hosting backups of {args.client_id}",
            policy=pulumi.Output.all(account, self.user_arn).apply(lambda v: render_backup_key_policy(*v)),
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            opts=data(),
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/odoo-hosting-{args.client_id}-backup",
                      target_key_id=key.key_id, opts=child)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=backup_bucket_name(args.client_id),
            # Only possible at creation; never force_destroy a backup bucket.
            object_lock_enabled=True,
            force_destroy=False,
            opts=data(),
        )
        companions = bucket_companions(name, bucket, child, kms_key_arn=key.arn)
        versioning, encryption = companions.versioning, companions.encryption
        ownership, public_block = companions.ownership, companions.public_block
        lock = aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock", bucket=bucket.id, object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=LOCK_MODE, days=args.lock_days)),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[versioning]))
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="old-backups-to-archive",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionTransitionArgs(
                        noncurrent_days=args.fast_restore_days, storage_class=ARCHIVE_CLASS),
                    aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionTransitionArgs(
                        noncurrent_days=args.deep_archive_days, storage_class=DEEP_ARCHIVE_CLASS),
                ],
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.retention_days),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS),
            )],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[versioning]))
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=bucket.id,
            policy=render_bucket_policy(s3_bucket_arn(backup_bucket_name(args.client_id))),
            # A bucket policy is refused while the public access block is being set.
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[public_block, ownership]))

        self.host_bundle_object: aws.s3.BucketObjectv2 | None = None
        if args.host_bundle is not None:
            # Content-addressed: a changed bundle is a new object; the old ones stay (locked, and
            # a record of what each host ran), so the program never deletes them.
            self.host_bundle_object = aws.s3.BucketObjectv2(
                f"{name}-host-bundle", bucket=bucket.id, key=bundle_key(bundle_sha256(args.host_bundle)),
                content=args.host_bundle, content_type="application/yaml", checksum_algorithm="SHA256",
                opts=pulumi.ResourceOptions(parent=self, provider=provider, retain_on_delete=True,
                                            depends_on=[encryption, lock]))

        aws.iam.UserPolicy(f"{name}-user-policy", user=user.name,
                           policy=render_identity_policy(s3_bucket_arn(backup_bucket_name(args.client_id))),
                           opts=child)
        # The incident register the host's notifier writes, and the bucket's access logs (INC-01).
        register = IncidentRegister(
            f"{name}-register",
            IncidentRegisterArgs(client_id=args.client_id, provider=provider, kms_key_arn=key.arn,
                                 host_user_name=user.name, host_user_arn=self.user_arn, backup_bucket_id=bucket.id,
                                 backup_bucket_arn=bucket.arn),
            opts=pulumi.ResourceOptions(parent=self))
        keys = {
            slot: aws.iam.AccessKey(
                f"{name}-access-key-{slot}", user=user.name,
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider,
                    # Replaced when the slot's generation changes; deleted first
                    # because IAM allows only two keys per user.
                    replacement_trigger=f"generation-{args.rotation.generation(slot)}",
                    delete_before_replace=True,
                    additional_secret_outputs=["secret"],
                ))
            for slot in SLOTS
        }
        current = keys[args.rotation.current_slot]

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.repository = pulumi.Output.from_input(repository_url(args.region, backup_bucket_name(args.client_id)))
        self.user_name = user.name
        self.register_bucket = register.register_bucket
        self.log_bucket = register.log_bucket
        self.current_credentials = pulumi.Output.secret(pulumi.Output.all(current.id, current.secret).apply(
            lambda v: {SECRET_NAME_AWS_KEY_ID: v[0], SECRET_NAME_AWS_SECRET: v[1]}))
        self.register_outputs({
            "bucket_name": self.bucket_name,
            "bucket_arn": self.bucket_arn,
            "kms_key_arn": self.kms_key_arn,
            "repository": self.repository,
            "user_name": self.user_name,
            "user_arn": self.user_arn,
            "register_bucket": self.register_bucket,
            "log_bucket": self.log_bucket,
        })
