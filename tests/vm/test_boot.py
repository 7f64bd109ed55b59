"""Issue #7: boot each example stack's rendered host in a real Debian 12 VM and prove
its promises from the outside.

QEMU (software emulation) boots a Debian 12 image built from Debian packages
(tests/vm/image.py, cached outside the repository) with the stack's rendered
cloud-config on a NoCloud seed, a blank disk named like a Hetzner volume, and
user-mode networking inside a network namespace the test makes. Vault is
played by tests/vm/vault_standin.py (see there what it does not check); the
wrapped secret-id arrives through QEMU fw_cfg, never in user-data. The test
reaches SSH the real way, through WireGuard peers in that namespace.

Differences from production, all test-only and public: the example's SSH and
WireGuard public keys are replaced by the test's own; the Vault address is the
stand-in's; the cloud-config gets one extra file, the stand-in's throwaway CA
certificate. Everything else (including package_update/upgrade, which run
offline and harmlessly: the packages are already in the image) is the
rendered cloud-config as is.
"""

from __future__ import annotations

import pytest

from components.hostconfig import write_files
from tests.conftest import EXAMPLE_STACKS, example_settings

from .conftest import record, require_vm_host
from .host import Report, boot_and_check, weaken_sshd

pytestmark = [pytest.mark.vm, pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module", params=EXAMPLE_STACKS)
def booted(request) -> Report:
    """One boot per example stack, shared by the tests below."""
    require_vm_host()
    report = boot_and_check(request.param)
    record(report)
    return report


def expect(report: Report, *names: str) -> None:
    assert report.error is None, report.summary()
    bad = [report.checks[n] for n in names if n not in report.checks or not report.checks[n].ok]
    assert not bad, "\n".join(f"{c.name}: {c.detail}" for c in bad) + "\n\n" + report.summary()


def test_acc01_ssh_is_key_only(booted):
    """ACC-01: key login works; password (for an account that has one) and root are refused."""
    expect(booted, "ssh-key-login", "sshd-effective-config", "ssh-password-refused", "ssh-root-refused")


def test_dsk01_data_volume_is_luks2_opened_at_boot(booted):
    """DSK-01: the Hetzner-named volume is LUKS2 (aes-xts-plain64, 512-bit, argon2id), opened at
    boot and mounted where PostgreSQL and the filestore live."""
    expect(booted, "data-volume-luks2")


def test_sec01_boot_secrets_come_from_vault_and_never_touch_disk(booted):
    """SEC-01/SEC-02/DSK-01: unwrap once -> AppRole login -> KV v2 read; no served value (LUKS key,
    WireGuard key, tokens, secret-id) on any disk of the guest; no plaintext on the data volume."""
    expect(booted, "boot-secrets-from-vault", "secrets-not-on-disk")


def test_acc02_tls02_only_the_controls_ports_answer(booted):
    """ACC-02/TLS-02: nftables active with input policy drop; from outside only 80/443 (public)
    answer, nothing (VPN-only); SSH only through the tunnel."""
    expect(booted, "nftables-policy-drop")


def test_acc04_fail2ban_bans_after_failures(booted):
    """ACC-04: fail2ban is active with the sshd and odoo jails and bans a VPN member after <= 5
    failed logins, for >= 1 hour, while the operator stays in."""
    expect(booted, "fail2ban-bans")


def test_swu01_unattended_upgrades_enabled(booted):
    """SWU-01: apt's timers are enabled, unattended upgrades on, at the maintenance window."""
    expect(booted, "unattended-upgrades-enabled")


def test_bkp01_backup_timer_enabled(booted):
    """BKP-01: the daily backup timer is enabled."""
    stack_settings = example_settings(booted.label) if booted.label in EXAMPLE_STACKS else None
    rendered = [f["path"] for f in write_files(stack_settings)] if stack_settings else []
    if not any("backup" in path and path.endswith(".timer") for path in rendered):
        pytest.xfail("no backup timer is rendered yet: the backup issue (BKP-01) adds it")
    expect(booted, "backup-timer-enabled")


def test_first_boot_is_clean(booted):
    """cloud-init finished with no error or warning, and no unit failed."""
    expect(booted, "cloud-init-done-clean", "system-running")


def test_weakened_cloud_config_fails_the_checks():
    """The checks are not vacuous: password SSH on (ssh_pwauth plus a drop-in read before ours
    that allows passwords and root) is reported, by the very checks the stacks pass."""
    require_vm_host()
    report = boot_and_check("example-public", label="example-public WEAKENED", transform=weaken_sshd,
                            ssh_only=True)
    record(report)
    assert report.error is None, report.summary()
    failed = {c.name for c in report.failed()}
    assert {"sshd-effective-config", "ssh-password-refused"} <= failed, report.summary()
    assert report.checks["ssh-key-login"].ok, report.summary()
