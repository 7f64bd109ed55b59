"""BKP-01..05: the backup bucket, its identity, credential rotation and the rendered agent."""

from __future__ import annotations

import datetime
import json

import pytest

from components.backup import (
    DENIED_OBJECT_ACTIONS,
    KMS_ACTIONS,
    RESTIC_BUCKET_ACTIONS,
    RESTIC_OBJECT_ACTIONS,
    BackupStorage,
    BackupStorageArgs,
    render_bucket_policy,
    render_identity_policy,
)
from components.client_stack import ClientStack, ClientStackArgs
from components.hostconfig import render_host
from components.hostconfig.backup import (
    BACKUP_SERVICE,
    BACKUP_TIMER,
    BACKUP_TIMERS,
    CHECK_SERVICE,
    CHECK_TIMER,
    FAILURE_SERVICE,
    backup_bucket_name,
    backup_environment,
    backup_write_files,
    render_backup_units,
    repository_url,
)
from components.rotation import Rotation
from tests.conftest import EXAMPLE_STACKS, TEST_ACCOUNT, example_settings

DAY = datetime.date(2026, 11, 25)


def _args(**overrides):
    values = dict(client_id="acme-shop", region="eu-central-1", fast_restore_days=30, deep_archive_days=120,
                  retention_days=400, lock_days=30, rotation=Rotation(period_days=30, today=DAY),
                  tags={"client": "acme-shop"})
    values.update(overrides)
    return BackupStorageArgs(**values)


@pytest.fixture(params=EXAMPLE_STACKS)
def built(request, pulumi_run):
    settings = example_settings(request.param)
    program = pulumi_run(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings, today=DAY)),
                         stack=request.param)
    return settings, program


def _backup(program, type_):
    """The one resource of ``type_`` that belongs to the backup bucket itself (not to the incident
    register and access-log buckets beside it, tests/unit/test_register.py)."""
    (found,) = [r for r in program.of_type(type_) if "-backup-register-" not in r.name]
    return found


def _one(program, kind):
    return _backup(program, f"aws:s3/{kind[0].lower() + kind[1:]}:{kind}")


# --- rotation ------------------------------------------------------------------------


def test_rotation_slots_alternate_and_no_credential_outlives_two_periods():
    period = 30
    start = datetime.date(2026, 1, 1)
    seen: dict[tuple[str, int], list[datetime.date]] = {}
    previous_current = None
    for offset in range(400):
        today = start + datetime.timedelta(days=offset)
        r = Rotation(period_days=period, today=today)
        for slot in ("a", "b"):
            seen.setdefault((slot, r.generation(slot)), []).append(today)
        if previous_current is not None and r.current_slot != previous_current:
            # The slot that just became current is the one whose generation just changed.
            yesterday = Rotation(period_days=period, today=today - datetime.timedelta(days=1))
            assert r.generation(r.current_slot) == yesterday.generation(r.current_slot) + 1
            assert r.generation(r.previous_slot) == yesterday.generation(r.previous_slot)
        previous_current = r.current_slot
    lifetimes = [len(days) for days in seen.values()][1:-1]  # first/last are cut by the window
    assert lifetimes and max(lifetimes) == 2 * period <= 90


def test_rotation_is_deterministic_within_a_day_and_next_rotation_is_a_period_boundary():
    r = Rotation(period_days=30, today=DAY)
    assert r == Rotation(period_days=30, today=DAY)
    assert (r.next_rotation - datetime.date(1970, 1, 1)).days % 30 == 0
    assert 0 < (r.next_rotation - DAY).days <= 30


def test_rotation_rejects_a_zero_period():
    with pytest.raises(ValueError):
        Rotation(period_days=0, today=DAY)


# --- the bucket and its companions ------------------------------------------------------------


def test_provider_is_pinned_to_the_eu_region_with_client_tags(built):
    settings, program = built
    providers = [r for r in program.of_type("pulumi:providers:aws") if "-backup-" in r.name]
    [provider] = providers
    assert provider.inputs["region"] == settings.backup.region
    tags = provider.inputs["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags["tags"]["client"] == settings.client_id
    bucket = _backup(program, "aws:s3/bucket:Bucket")
    assert bucket.provider.startswith(provider.urn)


def test_bucket_has_object_lock_at_creation_and_is_never_force_destroyed(built):
    settings, program = built
    bucket = _backup(program, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == backup_bucket_name(settings.client_id)
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect and bucket.retain_on_delete


def test_kms_key_is_the_clients_own_rotated_and_protected(built):
    settings, program = built
    [key] = [k for k in program.of_type("aws:kms/key:Key") if "-backup-" in k.name]
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    assert key.protect and key.retain_on_delete
    sse = _backup(program, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    rule = sse.inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["bucketKeyEnabled"] is True
    assert key.urn in sse.dependencies  # kms_master_key_id = the client's key ARN (unknown under mocks)


def test_bucket_companions(built):
    settings, program = built
    assert _one(program, "BucketVersioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    pab = _one(program, "BucketPublicAccessBlock").inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                        "restrictPublicBuckets"))
    assert _one(program, "BucketOwnershipControls").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    lock = _one(program, "BucketObjectLockConfiguration").inputs["rule"]["defaultRetention"]
    assert lock == {"mode": "GOVERNANCE", "days": settings.backup.lock_days}
    policy = json.loads(_one(program, "BucketPolicy").inputs["policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_lifecycle_tiers_old_backups_and_keeps_the_live_repository_in_standard(built):
    settings, program = built
    [rule] = _one(program, "BucketLifecycleConfiguration").inputs["rules"]
    b = settings.backup
    assert rule["status"] == "Enabled"
    assert "transitions" not in rule, "current objects are the live restic repository: they stay in STANDARD"
    assert rule["noncurrentVersionTransitions"] == [
        {"noncurrentDays": b.fast_restore_days, "storageClass": "GLACIER"},
        {"noncurrentDays": b.deep_archive_days, "storageClass": "DEEP_ARCHIVE"}]
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": b.retention_days}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_backup_args_refuse_inconsistent_tiers_and_foreign_tags():
    with pytest.raises(ValueError, match="EU"):
        _args(region="us-east-1")
    with pytest.raises(ValueError):
        _args(deep_archive_days=20)
    with pytest.raises(ValueError):
        _args(lock_days=500)
    with pytest.raises(ValueError, match="client"):
        _args(tags={"client": "someone-else"})


# --- the identity -----------------------------------------------------------------------


def test_identity_policy_allows_only_what_restic_needs_on_the_clients_bucket():
    doc = json.loads(render_identity_policy("arn:aws:s3:::b"))
    allowed = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    actions = {a for s in allowed for a in s["Action"]}
    assert actions == {*RESTIC_BUCKET_ACTIONS, *RESTIC_OBJECT_ACTIONS}
    assert not any("*" in a for a in actions)
    for s in allowed:
        assert all(r in ("arn:aws:s3:::b", "arn:aws:s3:::b/*") for r in s["Resource"])
    [deny] = [s for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert set(deny["Action"]) == set(DENIED_OBJECT_ACTIONS) >= {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"}


def _policy(program, type_, suffix):
    (found,) = [r for r in program.of_type(type_) if r.name.endswith(suffix)]
    return found, json.loads(found.inputs["policy"])


def test_the_backup_key_is_granted_to_the_backup_identity_by_its_arn_in_the_key_policy(built):
    """The key's ARN is AWS's random id, unknown at preview: the key's policy names the identity instead
    (its ARN is the account, the path and the name), so every policy is judged at `pulumi preview`."""
    settings, program = built
    user = program.one("aws:iam/user:User")
    user_arn = f"arn:aws:iam::{TEST_ACCOUNT}:user/odoo-hosting/odoo-hosting-{settings.client_id}-backup"
    assert user.inputs["path"] + user.inputs["name"] == user_arn.split(":user", 1)[1]
    key, doc = _policy(program, "aws:kms/key:Key", "-backup-key")
    root, grant = doc["Statement"]
    assert root["Principal"] == {"AWS": f"arn:aws:iam::{TEST_ACCOUNT}:root"} and root["Action"] == "kms:*"
    assert grant["Principal"] == {"AWS": user_arn} and grant["Resource"] == "*"
    assert set(grant["Action"]) == set(KMS_ACTIONS)
    assert user.urn in key.dependencies, "AWS refuses a key policy naming a user that does not exist yet"
    _identity, identity_doc = _policy(program, "aws:iam/userPolicy:UserPolicy", "-backup-user-policy")
    assert "kms:" not in json.dumps(identity_doc)


def test_backup_identity_may_publish_to_the_clients_incident_topic_and_use_its_key(built):
    """INC-01: the host's notifier publishes with the backup identity; an SSE-KMS topic also needs its key."""
    settings, program = built
    name = settings.client_id
    user = program.one("aws:iam/user:User")
    user_arn = f"arn:aws:iam::{TEST_ACCOUNT}:user/odoo-hosting/odoo-hosting-{name}-backup"
    publisher, doc = _policy(program, "aws:iam/userPolicy:UserPolicy", "-incidents-publisher-0")
    assert publisher.inputs["user"] == user.inputs["name"]
    [statement] = doc["Statement"]
    topic = program.one("aws:sns/topic:Topic")
    assert statement["Action"] == ["sns:Publish"]
    assert statement["Resource"] == [f"arn:aws:sns:{settings.incident_region}:{TEST_ACCOUNT}:{topic.inputs['name']}"]
    key, key_doc = _policy(program, "aws:kms/key:Key", "-incidents-key")
    grants = [s for s in key_doc["Statement"] if s["Principal"] != {"AWS": f"arn:aws:iam::{TEST_ACCOUNT}:root"}]
    assert grants == [{"Sid": "UseTheKey0", "Effect": "Allow", "Principal": {"AWS": user_arn},
                       "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"}]
    assert user.urn in key.dependencies


def test_bucket_policy_denies_plain_http_on_bucket_and_objects():
    doc = json.loads(render_bucket_policy("arn:aws:s3:::b"))
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_two_access_keys_rotate_by_slot_and_are_replaced_delete_first(built, pulumi_run):
    settings, program = built
    keys = sorted(program.of_type("aws:iam/accessKey:AccessKey"), key=lambda r: r.name)
    assert [k.name.rsplit("-", 1)[-1] for k in keys] == ["a", "b"]
    for key in keys:
        assert key.delete_before_replace, "IAM allows two keys per user: the old one goes first"
        assert "secret" in key.additional_secret_outputs
    user = program.one("aws:iam/user:User")
    assert user.inputs["name"] == f"odoo-hosting-{settings.client_id}-backup"


def test_replacement_trigger_follows_the_slot_generation(pulumi_run):
    """The key of a slot is replaced exactly when that slot's generation changes."""
    import pulumi

    captured = {}
    original = pulumi.ResourceOptions.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if kwargs.get("replacement_trigger"):
            captured.setdefault(kwargs["replacement_trigger"], 0)
            captured[kwargs["replacement_trigger"]] += 1

    rotation = Rotation(period_days=30, today=DAY)
    mp = pytest.MonkeyPatch()
    mp.setattr(pulumi.ResourceOptions, "__init__", spy)
    try:
        pulumi_run(lambda: BackupStorage("acme-shop-backup", _args(rotation=rotation)))
    finally:
        mp.undo()
    expected = {}
    for slot in ("a", "b"):
        trigger = f"generation-{rotation.generation(slot)}"
        expected[trigger] = expected.get(trigger, 0) + 1
    assert captured == expected


# --- the agent on the host --------------------------------------------------------------------


def test_units_schedule_a_daily_backup_a_weekly_check_and_a_failure_hook():
    settings = example_settings("example-public")
    units = render_backup_units(settings)
    assert f"OnCalendar=*-*-* {settings.backup.time}:00 UTC" in units[BACKUP_TIMER]
    assert f"OnCalendar=Sun *-*-* {settings.backup.time}:00 UTC" in units[CHECK_TIMER]
    for timer in (BACKUP_TIMER, CHECK_TIMER):
        assert "Persistent=true" in units[timer]
    for service in (BACKUP_SERVICE, CHECK_SERVICE):
        assert "OnFailure=odoo-hosting-backup-failed@%n.service" in units[service]
        assert "Requires=odoo-hosting-data.service" in units[service]
    assert "notify-failure %i" in units[FAILURE_SERVICE]
    assert set(BACKUP_TIMERS) == {BACKUP_TIMER, CHECK_TIMER}


def test_host_enables_the_timers_and_installs_restic():
    import yaml
    settings = example_settings("example-private")
    host = render_host(settings)
    assert "restic" in yaml.safe_load(host.user_data)["packages"]
    bundle = yaml.safe_load(host.bundle)
    assert ["systemctl", "enable", "--now", *BACKUP_TIMERS] in bundle["activate"]
    paths = {f["path"] for f in bundle["files"]}
    assert {f["path"] for f in backup_write_files(settings)} <= paths


def test_environment_holds_no_secret_and_names_the_eu_bucket():
    settings = example_settings("example-private")
    env = backup_environment(settings)
    assert env["RESTIC_REPOSITORY"] == repository_url(settings.backup.region, backup_bucket_name(settings.client_id))
    assert env["BACKUP_KEEP_DAILY"] == str(settings.backup.keep_daily)
    assert env["SECRET_FETCH"].endswith("--path backup")
    assert not any(k in env for k in ("RESTIC_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"))


def test_bucket_names_are_valid_and_distinct():
    names = {backup_bucket_name(f"client-{i}") for i in range(50)}
    assert len(names) == 50
    long = backup_bucket_name("a" + "b" * 30 + "c")
    assert len(long) <= 63 and long == long.lower()
