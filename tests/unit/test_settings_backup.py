"""Settings for backups and credential rotation: one test per rule; every error names the key.

(Kept beside tests/unit/test_settings.py, same helpers, so concurrent work on the app-plane keys
does not collide.)
"""

from __future__ import annotations

import pytest

from components.settings import MAX_CREDENTIAL_ROTATION_DAYS, parse_settings
from tests.unit.test_settings import _error, _raw


def test_backup_defaults():
    s = parse_settings(_raw())
    b = s.backup
    assert (b.region, b.time) == ("eu-central-1", "01:30")
    assert b.fast_restore_days < b.deep_archive_days < b.retention_days
    assert b.lock_days <= b.retention_days
    assert (b.keep_daily, b.keep_weekly, b.keep_monthly) == (7, 5, 12)
    assert s.credential_rotation_days == 30 and 2 * s.credential_rotation_days <= 90


@pytest.mark.parametrize("region", ["us-east-1", "eu-central", "EU-CENTRAL-1", "me-central-1", 3])
def test_backup_region_must_be_an_aws_eu_region(region):
    err = _error(backupRegion=region)
    assert err.key == "backupRegion" and "eu-central-1" in err.allowed


@pytest.mark.parametrize("time", ["1:30", "25:00", "01:60", "daily", None])
def test_backup_time_must_be_hh_mm(time):
    assert _error(backupTime=time).key == "backupTime"


def test_backup_time_inside_the_maintenance_window_is_an_error():
    err = _error(backupTime="03:15", maintenanceWindow="03:00-05:00")
    assert err.key == "backupTime" and "maintenance window" in err.allowed


def test_backup_time_inside_a_window_spanning_midnight_is_an_error():
    assert _error(stack="example-private", backupTime="00:15").key == "backupTime"  # window 23:30-01:00


def test_archive_tier_before_the_fast_restore_window_is_an_error():
    err = _error(backupFastRestoreDays=60, backupDeepArchiveDays=30)
    assert err.key == "backupDeepArchiveDays" and "fast-restore window" in err.allowed


def test_retention_must_outlast_the_archive_tiers():
    err = _error(backupDeepArchiveDays=200, backupRetentionDays=150)
    assert err.key == "backupRetentionDays"


def test_a_lock_longer_than_the_retention_is_an_error():
    err = _error(backupLockDays=500, backupRetentionDays=400)
    assert err.key == "backupLockDays" and "retention" in err.allowed


@pytest.mark.parametrize("key", ["backupFastRestoreDays", "backupDeepArchiveDays", "backupRetentionDays",
                                 "backupLockDays", "backupKeepDaily"])
def test_day_counts_must_be_positive_integers(key):
    assert _error(**{key: 0}).key == key
    assert _error(**{key: "soon"}).key == key


def test_keep_weekly_and_monthly_may_be_zero_but_not_negative():
    assert parse_settings(_raw(backupKeepWeekly=0, backupKeepMonthly=0)).backup.keep_weekly == 0
    assert _error(backupKeepMonthly=-1).key == "backupKeepMonthly"


@pytest.mark.parametrize("days", [0, MAX_CREDENTIAL_ROTATION_DAYS + 1, 90])
def test_credential_rotation_keeps_every_credential_under_90_days(days):
    err = _error(credentialRotationDays=days)
    assert err.key == "credentialRotationDays" and f"to {MAX_CREDENTIAL_ROTATION_DAYS}" in err.allowed


def test_backup_settings_accept_stricter_values():
    s = parse_settings(_raw(backupRegion="eu-north-1", backupTime="22:00", backupFastRestoreDays=7,
                            backupDeepArchiveDays=90, backupRetentionDays=3650, backupLockDays=90,
                            credentialRotationDays=7))
    assert s.backup.region == "eu-north-1" and s.credential_rotation_days == 7
