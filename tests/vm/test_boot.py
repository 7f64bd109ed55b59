"""Issue #7: boot each example stack's rendered host in a real Debian 12 VM and prove
its promises from the outside.

QEMU (software emulation) boots a Debian 12 image built from Debian packages
(tests/vm/image.py, cached outside the repository) with the stack's rendered
user-data (``render_host(...).user_data``) on a NoCloud seed, a blank disk
named like a Hetzner volume, and user-mode networking inside a network
namespace the test makes. Vault is played by tests/vm/vault_standin.py, the
client's bucket and incident topic by moto (tests/vm/s3_standin.py), which
holds the rendered host bundle at the pinned key (see both for what they do
not check); the wrapped secret-id arrives through QEMU fw_cfg, never in
user-data. The host fetches, verifies and installs its bundle itself; the
test reaches SSH the real way, through WireGuard peers in that namespace.

Differences from production, all test-only and public: the example's SSH and
WireGuard public keys are replaced by the test's own; the Vault address, the
bundle URL and the SNS endpoint are the stand-ins' (plain HTTP for S3/SNS);
the user-data gets one extra file, the Vault stand-in's throwaway CA
certificate. Everything else (including package_update/upgrade, which run
offline and harmlessly: the packages are already in the image) is the
rendered host as is.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from components.hostconfig import write_files
from tests.conftest import EXAMPLE_STACKS, example_settings

from .conftest import record, require_vm_host
from .host import Report, boot_and_check, tamper_bundle, weaken_sshd
from .image import ensure_image
from .machine import vm_cpus, vm_parallelism

pytestmark = [pytest.mark.vm, pytest.mark.system, pytest.mark.slow]

REBOOT_STACK = "example-private"
"""The one stack whose disks boot a second time, with S3 stopped (CI time: one reboot is enough)."""
TAMPER_STACK = "example-public"
REFUSAL_FACTS = ("refused-on-console", "refusal-published", "data-volume-closed", "nothing-installed")
"""Facts a refused bundle makes true; the good boots show the very same checks false."""


WEAKENED = "example-public WEAKENED"
TAMPERED = f"{TAMPER_STACK} TAMPERED BUNDLE"
BOOTS = {
    # Longest first (measured: ~360 s with its reboot, ~230, ~220, ~130): the pool starts them in
    # this order, so the short ones fill in behind.
    REBOOT_STACK: dict(stack=REBOOT_STACK, reboot=True),
    **{stack: dict(stack=stack) for stack in EXAMPLE_STACKS if stack != REBOOT_STACK},
    WEAKENED: dict(stack="example-public", label=WEAKENED, transform=weaken_sshd, ssh_only=True),
    TAMPERED: dict(stack=TAMPER_STACK, label=TAMPERED, tamper=tamper_bundle),
}
"""Every boot of this module, by the label its report carries."""
TEST_BOOTS = {"test_weakened_cloud_config_fails_the_checks": WEAKENED,
              "test_tampered_bundle_is_refused_reported_and_not_installed": TAMPERED}
"""The tests that boot a machine of their own (the others share one boot per stack: ``booted``)."""


def _needed(session: pytest.Session) -> list[str]:
    """The boots the selected tests of this module use, in BOOTS order."""
    names = set()
    for item in session.items:
        module = getattr(item, "module", None)
        if module is None or module.__name__ != __name__:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "booted" in callspec.params:
            names.add(callspec.params["booted"])
        elif getattr(item, "originalname", "") in TEST_BOOTS:
            names.add(TEST_BOOTS[item.originalname])
    return [name for name in BOOTS if name in names]


@functools.cache
def _scheduled(names: tuple[str, ...]) -> dict[str, Future[Report]]:
    """Start the boots, vm_parallelism() at a time (each VM gets vm_cpus() vCPUs): a QEMU boot is
    mostly one busy thread, so two VMs with one vCPU each take little longer than one with two.
    The image is built (or found) once, before any of them."""
    started = time.monotonic()
    image = ensure_image()
    print(f"\nVM image {'built' if image.built else 'ready (cached)'} in {time.monotonic() - started:.0f}s")
    pool = ThreadPoolExecutor(vm_parallelism(), thread_name_prefix="vm-boot")
    print(f"\nVM boots: {len(names)}, {vm_parallelism()} at a time, {vm_cpus()} vCPU(s) each: {', '.join(names)}")
    futures = {name: pool.submit(boot_and_check, **BOOTS[name]) for name in names}
    pool.shutdown(wait=False)
    return futures


def boot(request: pytest.FixtureRequest, name: str) -> Report:
    """The report of boot ``name``, once it is done (all the module's selected boots start together)."""
    require_vm_host()
    report = _scheduled(tuple(_needed(request.session)))[name].result()
    record(report)
    return report


@pytest.fixture(scope="module", params=EXAMPLE_STACKS)
def booted(request) -> Report:
    """One boot per example stack, shared by the tests below (REBOOT_STACK's boots twice)."""
    return boot(request, request.param)


def expect(report: Report, *names: str) -> None:
    assert report.error is None, report.summary()
    bad = [report.checks[n] for n in names if n not in report.checks or not report.checks[n].ok]
    assert not bad, "\n".join(f"{c.name}: {c.detail}" for c in bad) + "\n\n" + report.summary()


def test_acc01_ssh_is_key_only(booted):
    """ACC-01: key login works; password (for an account that has one) and root are refused."""
    expect(booted, "ssh-key-login", "sshd-effective-config", "ssh-password-refused", "ssh-root-refused")


def test_hostkey_the_host_presents_exactly_the_stack_key(booted):
    """Issue 18: sshd offers the Pulumi-made Ed25519 key (from Vault) and nothing else; every SSH
    connection of the test checks it strictly; a known_hosts with another key is refused."""
    expect(booted, "ssh-host-key-is-the-stack-key", "ssh-host-key-files", "ssh-host-key-mismatch-refused")


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


def test_weakened_cloud_config_fails_the_checks(request):
    """The checks are not vacuous: password SSH on (ssh_pwauth plus a drop-in read before ours
    that allows passwords and root) is reported, by the very checks the stacks pass."""
    report = boot(request, WEAKENED)
    assert report.error is None, report.summary()
    failed = {c.name for c in report.failed()}
    assert {"sshd-effective-config", "ssh-password-refused"} <= failed, report.summary()
    assert report.checks["ssh-key-login"].ok, report.summary()


def test_bundle_is_fetched_from_s3_verified_and_installed(booted):
    """The host bundle comes from the bucket: the fetcher reads the bucket credential at the
    client's ``backup`` KV path, GETs the pinned key once (SigV4 by curl), finds the pinned SHA-256
    and installs every file with its content, owner and mode, keeping a verified cache (0600).

    The same refusal checks the tampered boot passes are false here: no refusal on the console,
    nothing published, the data volume formatted and open, the bundle written. What the stand-ins
    cannot prove: moto accepts any signature and key and has no object lock, so this shows a
    well-formed request for the right object, not that AWS would authorise it."""
    expect(booted, "bundle-from-s3")
    assert booted.holds("bundle-installed"), booted.summary()
    assert [booted.holds(f) for f in REFUSAL_FACTS] == [False] * len(REFUSAL_FACTS), booted.summary()


@pytest.mark.parametrize("booted", [REBOOT_STACK], indirect=True)
def test_later_boot_needs_no_s3(booted):
    """The same disks boot again with S3 stopped (moto's process ended, connections refused): the
    bundle unit verifies the cached copy against the pin and changes nothing (journal: ``from
    cache: 0 of N files changed``, so nothing is restarted, and a line Odoo logged before the
    reboot is still in its log) without reading the bucket credential from Vault; the data volume
    opens again with the LUKS key from Vault (a new wrapped secret-id, as for every boot) and
    holds the first boot's marker; SSH through WireGuard works.

    Not proven: an outage that hangs (DNS, timeouts) rather than refuses; a cache that no longer
    matches the pin (the unit then fetches again, which needs S3)."""
    reboot = booted.reboot
    assert reboot is not None, booted.summary()
    assert reboot.error is None and not reboot.failed(), reboot.summary()
    expect(reboot, "ssh-key-login", "bundle-from-cache", "data-volume-reopened", "no-failed-unit",
           "secrets-not-on-disk")


def test_tampered_bundle_is_refused_reported_and_not_installed(request):
    """The object at the pinned key replaced by the bundle with ONE added sshd line (password login
    on), fresh server: the host refuses it. The refusal is on the serial console (the unit's
    stderr); exactly one SNS Publish reached the incident topic, naming the refusal and the pinned
    SHA-256, with no secret the host holds in it; the data volume stays closed (its disk is still
    blank: never formatted, so never opened; the unit file does not exist); no bundle file was
    written (no path holds its content from the pinned or the served bundle, no cache; the only
    other change there is cloud-init's own authorized_keys for the admin). Without the bundle there are no SSH keys, so
    all of this is read from the console, moto's records and the disks after power-off.

    What the stand-ins cannot prove: moto verifies no SigV4 signature (a wrong credential would
    pass) and enforces no object lock (in AWS the locked object cannot be replaced at all; this
    plays an attacker who got past it); the refusal reaching people (SNS subscriptions) is the
    backup tests' (moto SNS to SQS)."""
    report = boot(request, TAMPERED)
    assert report.error is None, report.summary()
    assert [report.holds(f) for f in REFUSAL_FACTS] == [True] * len(REFUSAL_FACTS), report.summary()
    assert report.holds("bundle-installed") is False, report.summary()
    expect(report, "secrets-not-on-disk")
