"""BKP-04 and REL-01: backup buckets are hardened, whichever way the program spells it.

pulumi-aws v7 splits a bucket's settings over separate resources
(``BucketVersioning``, ``BucketServerSideEncryptionConfiguration``,
``BucketPublicAccessBlock``...), so "a bucket without encryption" can only be
judged over the whole stack: :func:`bucket_hardening` finds each bucket's
companions and reports every missing piece by name. A companion that is
present but weak (AES256, a false flag, Suspended versioning) is also judged
on its own by the resource policies from :func:`companion_policy`, so the
message lands on the resource to fix. The older inline forms on the bucket
(``versioning``, ``serverSideEncryptionConfiguration``, ``lifecycleRules``,
``objectLockConfiguration``) count as companions.

The region of a bucket is judged by ``aws-resource-eu-region`` (RES-01/BKP-02).

Two scopes (``_scope``): any program's bucket must be encrypted (SSE-S3 or
SSE-KMS), behind a full public access block, TLS-only and not public, and
not ``forceDestroy`` (the baseline pieces); a bucket inside a client stack is
a backup bucket and must also have versioning, ownership controls, the
archive lifecycle, object lock and SSE-KMS with a key id of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from . import iam
from ._meta import as_list, as_number, cannot_check, get, in_client, is_true, resource_policy, stack_policy
from ._scope import in_client_stack

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
OWNERSHIP = ("aws:s3/bucketOwnershipControls:BucketOwnershipControls",)
LIFECYCLE = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
             "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
OBJECT_LOCK = ("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
               "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2")
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


# --- judging one piece ------------------------------------------------------------
# Each returns the problems of one companion's (or inline setting's) props;
# an empty list means the piece is present and good.

def _first(value: Any) -> Any:
    """A nested block that v7 spells as an object and BucketV2 as a one-element list."""
    items = as_list(value)
    return items[0] if items else None


def versioning_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    config = get(props, "versioningConfiguration")
    status = get(config, "status") if isinstance(config, Mapping) else None
    if not isinstance(status, str) or status.strip().lower() != "enabled":
        return [f"versioning status is '{status}', not Enabled; set versioningConfiguration.status to "
                "\"Enabled\" (a Suspended bucket keeps no old versions to restore from)"]
    return []


BASELINE_ALGORITHMS = KMS_ALGORITHMS | {"aes256"}


def _sse_rule_problem(default: Any, client: bool = True) -> str | None:
    if not isinstance(default, Mapping):
        return "a rule has no applyServerSideEncryptionByDefault; set sseAlgorithm \"aws:kms\" and kmsMasterKeyId"
    algorithm = get(default, "sseAlgorithm")
    if not client:
        if not isinstance(algorithm, str) or algorithm.strip().lower() not in BASELINE_ALGORITHMS:
            return (f"sseAlgorithm is '{algorithm}', not a server-side encryption algorithm; set sseAlgorithm "
                    "\"aws:kms\" (with kmsMasterKeyId) or \"AES256\"")
        return None
    if not isinstance(algorithm, str) or algorithm.strip().lower() not in KMS_ALGORITHMS:
        return (f"sseAlgorithm is '{algorithm}', not aws:kms (SSE-S3/AES256 uses an AWS-wide key, not the "
                "client's own); set sseAlgorithm \"aws:kms\" and kmsMasterKeyId to the client's KMS key")
    key = get(default, "kmsMasterKeyId")
    if not isinstance(key, str) or not key.strip():
        return ("sseAlgorithm is aws:kms but kmsMasterKeyId is not set, so S3 uses the account's shared "
                "aws/s3 key; set kmsMasterKeyId to the client's own KMS key")
    return None


def encryption_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    rules = as_list(get(props, "rules"))
    if not rules:
        return ["the encryption configuration has no rules; add one with sseAlgorithm \"aws:kms\" and "
                "kmsMasterKeyId"]
    problems = []
    for rule in rules:
        if isinstance(rule, Mapping):
            problem = _sse_rule_problem(_first(get(rule, "applyServerSideEncryptionByDefault")), client)
            if problem:
                problems.append(problem)
    return problems


def _inline_defaults(bucket: Mapping[str, Any]) -> list[Any] | None:
    """The applyServerSideEncryptionByDefault blocks of a bucket's inline SSE settings (v7's
    serverSideEncryptionConfiguration, BucketV2's ...Configurations; None for an unreadable rule),
    or None when the bucket has no inline SSE setting."""
    v7 = get(bucket, "serverSideEncryptionConfiguration")
    v2 = get(bucket, "serverSideEncryptionConfigurations")
    if v7 is None and v2 is None:
        return None
    defaults = []
    if isinstance(v7, Mapping):
        rule = get(v7, "rule")
        defaults.append(get(rule, "applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None)
    for config in as_list(v2):
        for rule in as_list(get(config, "rules") if isinstance(config, Mapping) else None):
            defaults.append(_first(get(rule, "applyServerSideEncryptionByDefaults"))
                            if isinstance(rule, Mapping) else None)
    return defaults


def _inline_encryption_problems(bucket: Mapping[str, Any], client: bool = True) -> list[str] | None:
    """None when the bucket has no inline SSE setting."""
    defaults = _inline_defaults(bucket)
    if defaults is None:
        return None
    return [p for p in (_sse_rule_problem(d, client) for d in defaults) if p]


def public_access_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not is_true(get(props, flag))]
    if off:
        return [f"the public access block leaves {', '.join(off)} not true; set all four of "
                f"{', '.join(PUBLIC_ACCESS_FLAGS)} to true"]
    return []


def ownership_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    rule = get(props, "rule")
    owner = get(rule, "objectOwnership") if isinstance(rule, Mapping) else None
    if owner != "BucketOwnerEnforced":
        return [f"objectOwnership is '{owner}', so ACLs stay active; set rule.objectOwnership to "
                "\"BucketOwnerEnforced\""]
    return []


@dataclass
class _Lifecycle:
    archive: bool = False
    expiration: bool = False
    abort: bool = False

    def problems(self) -> list[str]:
        missing = []
        if not self.archive:
            missing.append("a transition of older backups to an archive class (GLACIER, GLACIER_IR or "
                           "DEEP_ARCHIVE) after at least one day")
        if not self.expiration:
            missing.append("an expiration (days or date) at the end of the retention period")
        if not self.abort:
            missing.append("abortIncompleteMultipartUpload (daysAfterInitiation)")
        return [f"the lifecycle has no enabled rule with {m}" for m in missing]


def _transition_ok(transition: Any) -> bool:
    if not isinstance(transition, Mapping):
        return False
    storage = get(transition, "storageClass")
    days = as_number(get(transition, "days"))
    # Day 0 would skip the fast-restore class the control keeps recent backups in.
    return (isinstance(storage, str) and storage.strip().upper() in ARCHIVE_CLASSES
            and ((days is not None and days >= 1) or get(transition, "date") is not None))


def _expiration_ok(expiration: Any) -> bool:
    if not isinstance(expiration, Mapping):
        return False
    days = as_number(get(expiration, "days"))
    return (days is not None and days >= 1) or get(expiration, "date") is not None


def lifecycle_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    found, noncurrent = _Lifecycle(), _Lifecycle()
    for rule in as_list(get(props, "rules")):
        if not isinstance(rule, Mapping) or str(get(rule, "status", "")).strip().lower() != "enabled":
            continue
        found.archive |= any(_transition_ok(t) for t in as_list(get(rule, "transitions")))
        found.expiration |= _expiration_ok(get(rule, "expiration"))
        # In a versioned bucket holding a live, deduplicated repository (restic),
        # the older backups are the noncurrent versions: tiering and expiring
        # those is the same promise without breaking the live repository.
        # Counted only as a pair: noncurrent versions moved to an archive class AND expired.
        noncurrent.archive |= any(
            _transition_ok({"storageClass": get(t, "storageClass"), "days": get(t, "noncurrentDays")})
            for t in as_list(get(rule, "noncurrentVersionTransitions")) if isinstance(t, Mapping))
        expiry = get(rule, "noncurrentVersionExpiration")
        noncurrent.expiration |= isinstance(expiry, Mapping) and _expiration_ok({"days": get(expiry, "noncurrentDays")})
        abort = get(rule, "abortIncompleteMultipartUpload")
        days = as_number(get(abort, "daysAfterInitiation")) if isinstance(abort, Mapping) else None
        found.abort |= days is not None and days >= 1
    if noncurrent.archive and noncurrent.expiration:
        found.archive = found.expiration = True
    return found.problems()


def _inline_lifecycle_problems(bucket: Mapping[str, Any], client: bool = True) -> list[str] | None:
    rules = get(bucket, "lifecycleRules")
    if rules is None:
        return None
    found = _Lifecycle()
    for rule in as_list(rules):
        if not isinstance(rule, Mapping) or not is_true(get(rule, "enabled")):
            continue
        found.archive |= any(_transition_ok(t) for t in as_list(get(rule, "transitions")))
        found.expiration |= any(_expiration_ok(e) for e in as_list(get(rule, "expiration") or get(rule, "expirations")))
        days = as_number(get(rule, "abortIncompleteMultipartUploadDays"))
        found.abort |= days is not None and days >= 1
    return found.problems()


def _retention_problem(retention: Any) -> str | None:
    if not isinstance(retention, Mapping):
        return "the object lock configuration has no defaultRetention; set rule.defaultRetention (mode and days)"
    mode = get(retention, "mode")
    days = as_number(get(retention, "days"))
    years = as_number(get(retention, "years"))
    if not isinstance(mode, str) or mode.strip().upper() not in ("GOVERNANCE", "COMPLIANCE"):
        return f"the default retention mode is '{mode}'; set it to GOVERNANCE or COMPLIANCE"
    if not ((days is not None and days >= 1) or (years is not None and years >= 1)):
        return "the default retention has no positive days or years; set defaultRetention.days"
    return None


def object_lock_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    enabled = get(props, "objectLockEnabled", "Enabled")
    problems = []
    if str(enabled).strip().lower() != "enabled":
        problems.append(f"objectLockEnabled is '{enabled}'; set it to \"Enabled\"")
    rule = get(props, "rule")
    problem = _retention_problem(get(rule, "defaultRetention") if isinstance(rule, Mapping) else None)
    return problems + ([problem] if problem else [])


def _inline_object_lock_problems(bucket: Mapping[str, Any], client: bool = True) -> list[str] | None:
    config = get(bucket, "objectLockConfiguration")
    if not isinstance(config, Mapping):
        return None
    rule = get(config, "rule") or _first(get(config, "rules"))
    retention = None
    if isinstance(rule, Mapping):
        retention = get(rule, "defaultRetention") or _first(get(rule, "defaultRetentions"))
    problem = _retention_problem(retention)
    return [problem] if problem else []


def _secure_transport_false(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if operator.lower() != "bool" or not isinstance(tests, dict):
            continue
        for key, value in tests.items():
            values = value if isinstance(value, list) else [value]
            if key.lower() == "aws:securetransport" and any(str(v).strip().lower() == "false" for v in values):
                return True
    return False


def bucket_policy_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    raw = get(props, "policy")
    try:
        document = iam.parse_document(raw)
        sts = iam.statements(document)
    except iam.BadDocument as e:
        return [f"the bucket policy cannot be read ({e}); pass a JSON policy document"]
    problems = []
    denies_plaintext = any(
        str(st.get("Effect", "")).strip().lower() == "deny"
        and any(a.strip().lower() in ("*", "s3:*") for a in iam.strings(st.get("Action")))
        and _secure_transport_false(st.get("Condition"))
        for st in sts)
    if not denies_plaintext:
        problems.append("the bucket policy has no Deny of s3:* when aws:SecureTransport is false; add that "
                        "statement so plain-HTTP requests are refused")
    for i, st in enumerate(sts):
        principal = st.get("Principal")
        anyone = principal == "*" or (isinstance(principal, dict) and any(
            "*" in iam.strings(v) for v in principal.values()))
        if iam.is_allow(st) and anyone and not st.get("Condition"):
            problems.append(f"statement {i} of the bucket policy allows any principal ('*') without a "
                            "condition; grant only the IAM identities that need the bucket")
    return problems


# --- per-resource policies ----------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """One hardening piece of a bucket: its companion types and how to judge them."""

    key: str
    what: str  # "SSE-KMS encryption"
    types: Sequence[str]
    judge: Callable[[Mapping[str, Any], bool], list[str]]  # (props, inside a client stack)
    inline: Callable[[Mapping[str, Any], bool], list[str] | None] | None
    fix: str  # which resource to add
    baseline: bool = False  # required of any program's bucket, not only of a client's backup bucket


PIECES = (
    Piece("versioning", "versioning", VERSIONING, versioning_problems, None,
          "an aws.s3.BucketVersioning with versioning_configuration.status \"Enabled\""),
    Piece("encryption", "server-side encryption (SSE-KMS or SSE-S3)", ENCRYPTION,
          encryption_problems, _inline_encryption_problems,
          "an aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm \"aws:kms\" and "
          "kms_master_key_id (a client's backup bucket: the client's own key)", baseline=True),
    Piece("publicAccessBlock", "public access block", PUBLIC_ACCESS_BLOCK, public_access_problems, None,
          "an aws.s3.BucketPublicAccessBlock with all four flags true", baseline=True),
    Piece("ownership", "ownership controls (ACLs disabled)", OWNERSHIP, ownership_problems, None,
          "an aws.s3.BucketOwnershipControls with object_ownership \"BucketOwnerEnforced\""),
    Piece("lifecycle", "lifecycle configuration", LIFECYCLE, lifecycle_problems, _inline_lifecycle_problems,
          "an aws.s3.BucketLifecycleConfiguration with an archive transition, an expiration and "
          "abort_incomplete_multipart_upload"),
    Piece("objectLock", "object lock default retention", OBJECT_LOCK, object_lock_problems,
          _inline_object_lock_problems,
          "an aws.s3.BucketObjectLockConfiguration with rule.default_retention (mode, days)"),
    Piece("policy", "TLS-only bucket policy", BUCKET_POLICY, bucket_policy_problems, None,
          "an aws.s3.BucketPolicy denying s3:* when aws:SecureTransport is false", baseline=True),
)


def _inline_versioning(bucket: Mapping[str, Any]) -> bool | None:
    """True/False when the bucket sets versioning inline (v6 style), None otherwise."""
    blocks = as_list(get(bucket, "versioning")) + as_list(get(bucket, "versionings"))
    if not blocks:
        return None
    return any(isinstance(b, Mapping) and is_true(get(b, "enabled")) for b in blocks)


def _bucket_own_problems(props: Mapping[str, Any], client: bool = True) -> list[str]:
    problems = []
    if is_true(get(props, "forceDestroy")):
        what = "every backup" if client else "every object"
        problems.append(f"forceDestroy is true, so deleting the bucket deletes {what} in it; remove "
                        "forceDestroy (REL-01)")
    acl = get(props, "acl")
    if isinstance(acl, str) and acl.strip().lower() in PUBLIC_ACLS:
        problems.append(f"acl is '{acl}', which opens the bucket to others; remove acl (ACLs stay disabled "
                        "with BucketOwnerEnforced)")
    # Which encryption a client's bucket needs depends on what the bucket receives (a backup
    # bucket: the client's KMS key; an access-log target: SSE-S3), which only the stack shows:
    # here the baseline, the rest in the stack policy.
    problems.extend(_inline_encryption_problems(props, False) or [])
    if not client:
        return problems
    if _inline_versioning(props) is False:
        problems.append("the inline versioning block is not enabled; enable versioning")
    for inline in (_inline_lifecycle_problems, _inline_object_lock_problems):
        problems.extend(inline(props) or [])
    lock = get(props, "objectLockConfiguration")
    lock_on = is_true(get(props, "objectLockEnabled")) or (
        isinstance(lock, Mapping) and str(get(lock, "objectLockEnabled", "")).strip().lower() == "enabled")
    if not lock_on:
        problems.append("objectLockEnabled is not true, and object lock can be turned on only when the bucket "
                        "is created; set object_lock_enabled=True on the bucket")
    return problems


def _validate_bucket_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    client = in_client(args)
    if args.resource_type in BUCKET_TYPES:
        for problem in _bucket_own_problems(args.props, client):
            report_violation(f"bucket: {problem}.", None)
        return
    for piece in PIECES:
        if args.resource_type in piece.types:
            if not (client or piece.baseline):
                args.not_applicable(f"a {piece.what} is judged only on a client's backup bucket")
            strict = client and piece.key != "encryption"  # see _client_encryption_problems
            for problem in piece.judge(args.props, strict):
                report_violation(f"{problem}.", None)


s3_bucket_settings = resource_policy(
    name="aws-s3-bucket-settings-hardened",
    description="Checks that each S3 bucket and each bucket companion resource that is present is "
                "hardened: in any program no forceDestroy, no public ACL, server-side encryption, all four "
                "public-access-block flags and a TLS-only, non-public bucket policy; in a client stack (a "
                "backup bucket) also object lock on at creation, versioning Enabled, BucketOwnerEnforced, an "
                "archive lifecycle with expiry and multipart abort and a retention default.",
    controls=["BKP-04", "REL-01"],
    severity=Severity.HIGH,
    remediation="Fix the setting named in the message on the resource it is reported on; the backup "
                "component's defaults (aws.s3.Bucket with object_lock_enabled=True plus its companion "
                "resources) are compliant.",
    validate=_validate_bucket_resource,
    applies_to=BUCKET_TYPES + tuple(t for piece in PIECES for t in piece.types),
    scope="mixed",
)


# --- stack policy: every bucket has all its pieces -----------------------------------------

def _safe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except UnknownValueError:
        return None


def _bucket_names(bucket: Any) -> set[str]:
    """Names a companion may use for the bucket: its bucket input, logical name, and (when the
    engine knows them) id-like outputs handed over as inputs."""
    names = {bucket.name}
    value = _safe(lambda: get(bucket.props, "bucket"))
    if isinstance(value, str) and value:
        names.add(value)
        names.add(f"arn:aws:s3:::{value}")
    return names


def _refers_to(companion: Any, bucket: Any, names: set[str]) -> bool:
    """Whether ``companion`` configures ``bucket``: through the `bucket` input's dependency, its
    value, or (when neither says) a dependency on exactly one bucket."""
    deps = (companion.property_dependencies or {}).get("bucket", [])
    if any(d.urn == bucket.urn for d in deps):
        return True
    value = _safe(lambda: get(companion.props, "bucket"))
    if isinstance(value, str) and value in names:
        return True
    if deps:
        return False
    bucket_deps = {d.urn for d in (companion.dependencies or []) if d.resource_type in BUCKET_TYPES}
    return bucket_deps == {bucket.urn}


def _inline_present(piece: Piece, bucket: Mapping[str, Any]) -> bool:
    if piece.key == "versioning":
        return _safe(lambda: _inline_versioning(bucket)) is not None
    inline = piece.inline
    if inline is None:
        return False
    return _safe(lambda: inline(bucket, True)) is not None


LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
LOG_TARGET_SSE = "aes256"
"""AWS delivers S3 server access logs only into a bucket whose default encryption is SSE-S3
(AES256), and never into one with an object lock default retention."""


def _log_targets(resources: Sequence[Any], bucket: Any, names: set[str]) -> bool:
    """Whether some resource of the stack sends S3 server access logs into ``bucket``: a
    BucketLogging whose targetBucket is it, or another bucket's inline logging block."""
    def read(props: Any, key: str) -> Any:
        return _safe(lambda: get(props, key))

    for r in resources:
        if r.resource_type in LOGGING:
            deps = (r.property_dependencies or {}).get("targetBucket", [])
            value = read(r.props, "targetBucket")
            if any(d.urn == bucket.urn for d in deps) or (isinstance(value, str) and value in names):
                return True
        elif r.resource_type in BUCKET_TYPES and r.urn != bucket.urn:
            blocks = as_list(read(r.props, "logging")) + as_list(read(r.props, "loggings"))
            targets = [read(b, "targetBucket") for b in blocks if isinstance(b, Mapping)]
            if any(isinstance(t, str) and t in names for t in targets):
                return True
    return False


def _sse_algorithms(props: Mapping[str, Any]) -> list[Any]:
    """The default algorithms of an encryption companion's rules or a bucket's inline settings."""
    defaults = [_first(get(rule, "applyServerSideEncryptionByDefault")) if isinstance(rule, Mapping) else None
                for rule in as_list(get(props, "rules"))] + (_inline_defaults(props) or [])
    return [get(d, "sseAlgorithm") if isinstance(d, Mapping) else None for d in defaults]


def _strict_encryption(companion: Any) -> list[str]:
    """The client's own key. At preview the key id is the ARN of a KMS key the stack is still
    creating, so unknown: it is judged by where it comes from (a KMS key of this stack)."""
    try:
        return encryption_problems(companion.props, True)
    except UnknownValueError:
        deps = (companion.property_dependencies or {}).get("rules", [])
        if not any(d.resource_type in KMS_KEY_TYPES for d in deps):
            cannot_check(f"the kmsMasterKeyId of '{companion.name}' (unknown at preview and from no KMS key "
                         "of this stack)")
        weak = [a for a in _sse_algorithms(companion.props)
                if not (isinstance(a, str) and a.strip().lower() in KMS_ALGORITHMS)]
        return [f"sseAlgorithm is '{a}', not aws:kms; set sseAlgorithm \"aws:kms\" and kmsMasterKeyId to the "
                "client's KMS key" for a in weak]


def _client_encryption_problems(bucket: Any, mine: Sequence[Any], log_target: bool) -> list[tuple[str, str]]:
    """A client's bucket: the client's own KMS key, or SSE-S3 for the bucket that receives the
    backup bucket's access logs (the one encryption AWS delivers them into)."""
    sources = [(c.urn, c.props) for c in mine if c.resource_type in ENCRYPTION]
    if _inline_encryption_problems(bucket.props, False) is not None:
        sources.append((bucket.urn, bucket.props))
    problems = []
    for urn, props in sources:
        if not log_target:
            strict = (_strict_encryption([c for c in mine if c.urn == urn][0]) if urn != bucket.urn
                      else _inline_encryption_problems(props, True) or [])
            problems += [(urn, p) for p in strict]
            continue
        for algorithm in _sse_algorithms(props):
            if not (isinstance(algorithm, str) and algorithm.strip().lower() == LOG_TARGET_SSE):
                problems.append((urn, f"sseAlgorithm is '{algorithm}' on bucket '{bucket.name}', which receives "
                                      "S3 server access logs: AWS delivers them only into SSE-S3 buckets; set "
                                      "sseAlgorithm \"AES256\""))
    return problems


def _retention_set(mine: Sequence[Any], bucket: Any) -> bool:
    for c in mine:
        if c.resource_type in OBJECT_LOCK and not object_lock_problems(c.props):
            return True
    return _inline_object_lock_problems(bucket.props) == []


def _validate_bucket_hardening(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    companion_types = {t for p in PIECES for t in p.types}
    companions = [r for r in args.resources if r.resource_type in companion_types]
    cfg = args.get_config()
    for bucket in buckets:
        names = _bucket_names(bucket)
        mine = [c for c in companions if _refers_to(c, bucket, names)]
        client = in_client_stack(bucket.urn, cfg)
        log_target = client and _log_targets(args.resources, bucket, names)
        if client:
            for urn, problem in _client_encryption_problems(bucket, mine, log_target):
                report_violation(f"{problem}.", urn)
        if log_target and _retention_set(mine, bucket):
            report_violation(f"bucket '{bucket.name}' receives S3 server access logs and has an object lock "
                             "default retention, into which AWS delivers no logs; keep object lock on but drop "
                             "the default retention (the lifecycle expires the logs).", bucket.urn)
        for piece in PIECES:
            if not (client or piece.baseline):
                continue
            if log_target and piece.key == "objectLock":
                continue
            found = [c for c in mine if c.resource_type in piece.types]
            if found or _inline_present(piece, bucket.props):
                continue
            report_violation(
                f"bucket '{bucket.name}' has no {piece.what}: add {piece.fix} whose bucket is this bucket.",
                bucket.urn)


s3_bucket_hardening_complete = stack_policy(
    name="aws-s3-bucket-hardening-complete",
    description="Checks that every S3 bucket in the stack has each of its hardening companions (v7 "
                "separate resources or the older inline settings): in any program server-side encryption, a "
                "public access block and a TLS-only bucket policy; in a client stack also versioning, "
                "ownership controls, lifecycle, object lock default retention and SSE-KMS with the stack's own "
                "key, except for the bucket that receives S3 server access logs, which AWS fills only under "
                "SSE-S3 and no default retention.",
    controls=["BKP-04"],
    severity=Severity.HIGH,
    remediation="For each aws.s3.Bucket create BucketVersioning, BucketServerSideEncryptionConfiguration "
                "(aws:kms + the client's key), BucketPublicAccessBlock, BucketOwnershipControls, "
                "BucketLifecycleConfiguration, BucketObjectLockConfiguration and a BucketPolicy, each with "
                "bucket=<the bucket>.id.",
    validate=_validate_bucket_hardening,
    scope="mixed",
)


# --- advisory: whose key encrypts the bucket ---------------------------------------------------------

KMS_KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey", "aws:kms/externalKey:ExternalKey")


def _sse_key_ids(props: Mapping[str, Any]) -> list[Any]:
    keys = []
    for rule in as_list(get(props, "rules")):
        default = _first(get(rule, "applyServerSideEncryptionByDefault")) if isinstance(rule, Mapping) else None
        if isinstance(default, Mapping):
            keys.append(get(default, "kmsMasterKeyId"))
    return [k for k in keys if k is not None]


def _validate_bucket_key_owner(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    own_keys = {r.urn for r in args.resources if r.resource_type in KMS_KEY_TYPES}
    for config in (r for r in args.resources if r.resource_type in ENCRYPTION):
        deps = [d.urn for d in (config.property_dependencies or {}).get("rules", [])]
        try:
            keys = _sse_key_ids(config.props)
        except UnknownValueError:
            keys = []  # an output: the dependency below says whose
        if any(d in own_keys for d in deps):
            continue
        for key in keys:
            aws_managed = isinstance(key, str) and key.strip().endswith("alias/aws/s3")
            what = ("the AWS managed key aws/s3, which every principal in the account with S3 access can use"
                    if aws_managed else f"'{key}', a key this stack does not create")
            report_violation(f"'{config.name}' encrypts with {what}; check that the key belongs to the bucket's "
                             "owner and its key policy admits only the bucket's users (or create an aws.kms.Key "
                             "in this stack).", config.urn)


s3_bucket_key_owner = stack_policy(
    name="aws-s3-bucket-key-owned",
    description="Checks that a bucket's SSE-KMS key is one the stack creates (advisory), not the AWS managed "
                "aws/s3 key or a key from elsewhere whose owner the pack cannot see.",
    controls=["BKP-04"],
    severity=Severity.LOW,
    remediation="Create the bucket's aws.kms.Key in the same stack and pass its arn as kms_master_key_id.",
    validate=_validate_bucket_key_owner,
    applies_to=ENCRYPTION,
    enforcement_level=EnforcementLevel.ADVISORY,
)
