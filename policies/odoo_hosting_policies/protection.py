"""REL-01 (data-bearing resources survive a destroy or replacement) and BKP-04 (KMS key rotation).

:func:`protected_policy` is the one factory for "this data-bearing type has
Pulumi ``protect``". ``retain_on_delete`` (and ``deleted_with``) are not
visible to analyzers: pulumi_policy's PolicyResourceOptions carries only
protect, ignore_changes, delete_before_replace, aliases, custom_timeouts,
additional_secret_outputs and parent, so they cannot be checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from ._meta import as_number, get, is_true, resource_policy, shown

S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
KMS_KEY = "aws:kms/key:Key"
VAULT_MOUNT = "vault:index/mount:Mount"

MIN_DELETION_WINDOW_DAYS = 7


def protected_policy(*, name: str, what: str, types: Sequence[str], extra: str = "") -> ResourceValidationPolicy:
    """The "Pulumi protect is set" rule for one family of data-bearing resource types."""
    types = tuple(types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        if not (args.opts is not None and args.opts.protect):
            report_violation(
                f"the Pulumi protect option is not set on this {what}, so a pulumi destroy or a replacement "
                f"deletes the data it holds; set ResourceOptions(protect=True){extra}.", None)

    return resource_policy(
        name=name,
        description=f"Checks that every {what} has the Pulumi protect option (retain_on_delete is not "
                    "visible to policy packs and is not checked).",
        controls=["REL-01"],
        severity=Severity.HIGH,
        remediation=f"Create the {what} with opts=ResourceOptions(protect=True) (and retain_on_delete=True "
                    "where a replacement must keep the data).",
        validate=validate,
        applies_to=types,
    )


s3_bucket_protected = protected_policy(
    name="aws-s3-bucket-protected", what="S3 bucket", types=S3_BUCKETS, extra=" and leave forceDestroy off")
kms_key_protected = protected_policy(
    name="aws-kms-key-protected", what="KMS key", types=(KMS_KEY,),
    extra=" (a deleted key makes everything encrypted with it unreadable)")
vault_mount_protected = protected_policy(
    name="vault-mount-protected", what="Vault secrets mount", types=(VAULT_MOUNT,))


def _validate_kms_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    spec = str(get(args.props, "customerMasterKeySpec", "SYMMETRIC_DEFAULT")).upper()
    if spec == "SYMMETRIC_DEFAULT" and not is_true(get(args.props, "enableKeyRotation")):
        report_violation("enableKeyRotation is not true; set enableKeyRotation: true so AWS rotates the "
                         "client's backup key yearly (or sooner with rotationPeriodInDays).", None)
    window = get(args.props, "deletionWindowInDays")
    days = as_number(window)
    if window is not None and (days is None or days < MIN_DELETION_WINDOW_DAYS):
        report_violation(f"deletionWindowInDays is {shown(window)}; set it to at least {MIN_DELETION_WINDOW_DAYS} "
                         "(30 gives the most time to cancel a mistaken deletion).", None)


kms_key_rotation = resource_policy(
    name="aws-kms-key-rotation-enabled",
    description="Checks that symmetric KMS keys have automatic rotation on and a deletion window of at "
                "least 7 days.",
    controls=["BKP-04"],
    severity=Severity.MEDIUM,
    remediation="Create the client's aws.kms.Key with enable_key_rotation=True (deletion_window_in_days "
                "30 by default).",
    validate=_validate_kms_key,
    applies_to=(KMS_KEY,),
)
