"""VM tests: need root (network namespaces), QEMU, mmdebstrap and friends.

Without them the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_tool

VM_TOOLS = ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "mkfs.vfat", "mcopy", "ssh",
            "ssh-keygen", "wg", "wireguard-go", "ip", "openssl", "grep", "debugfs")

_REPORTS: list = []


def require_vm_host() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the VM tests need root under CI=true (network namespaces, mmdebstrap)")
        pytest.skip("the VM tests need root (network namespaces, mmdebstrap)")
    for tool in VM_TOOLS:
        require_tool(tool)
    try:
        import moto.server  # noqa: F401  (the S3/SNS stand-in; moto[server] is in requirements.lock)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("moto[server] is required under CI=true (make test installs requirements.lock)")
        pytest.skip("moto[server] is not installed")
    if not os.path.exists("/dev/net/tun"):
        if os.environ.get("CI") == "true":
            pytest.fail("/dev/net/tun is required (wireguard-go) under CI=true")
        pytest.skip("/dev/net/tun is missing (wireguard-go)")


def record(report) -> None:
    _REPORTS.append(report)


def pytest_terminal_summary(terminalreporter):
    if not _REPORTS:
        return
    terminalreporter.section("VM boots: phase timings (seconds from start of each boot) and checks")
    for report in _REPORTS:
        terminalreporter.write_line(report.summary())
        if report.reboot:
            terminalreporter.write_line(report.reboot.summary())
