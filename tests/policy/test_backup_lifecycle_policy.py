"""BKP-04 lifecycle for a live restic repository: old backups are the noncurrent versions.

The backup component keeps current objects (the live, deduplicated repository) in STANDARD and
tiers/expires noncurrent versions. The bucket policy accepts that form only as a pair."""

from __future__ import annotations

from odoo_hosting_policies.buckets import lifecycle_problems


def restic_lifecycle() -> dict:
    return {"bucket": "b", "rules": [{
        "id": "old-backups-to-archive", "status": "Enabled", "filter": {"prefix": ""},
        "noncurrentVersionTransitions": [{"noncurrentDays": 30, "storageClass": "GLACIER"},
                                         {"noncurrentDays": 120, "storageClass": "DEEP_ARCHIVE"}],
        "noncurrentVersionExpiration": {"noncurrentDays": 400},
        "expiration": {"expiredObjectDeleteMarker": True},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]}


def test_noncurrent_tiering_with_expiry_is_compliant():
    assert lifecycle_problems(restic_lifecycle()) == []


def test_noncurrent_tiering_without_expiry_is_a_violation():
    props = restic_lifecycle()
    del props["rules"][0]["noncurrentVersionExpiration"]
    problems = lifecycle_problems(props)
    assert any("expiration" in p for p in problems)


def test_noncurrent_expiry_without_an_archive_class_is_a_violation():
    props = restic_lifecycle()
    props["rules"][0]["noncurrentVersionTransitions"] = [{"noncurrentDays": 30, "storageClass": "STANDARD_IA"}]
    problems = lifecycle_problems(props)
    assert any("archive class" in p for p in problems)


def test_noncurrent_transition_on_day_zero_skips_the_fast_restore_class():
    props = restic_lifecycle()
    props["rules"][0]["noncurrentVersionTransitions"] = [{"noncurrentDays": 0, "storageClass": "GLACIER"}]
    assert lifecycle_problems(props)


def test_a_disabled_rule_counts_for_nothing():
    props = restic_lifecycle()
    props["rules"][0]["status"] = "Disabled"
    assert len(lifecycle_problems(props)) == 3
