"""SWU-01: the materialised apt configuration, as apt itself reads it (isolated APT_CONFIG),
and the apt-daily-upgrade.timer override, as systemd reads it. No real upgrade is run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from components.hostconfig import APT_TIMER_OVERRIDE_PATH, UNATTENDED_UPGRADES_PATH
from tests.conftest import require_tool

from .helpers import staged, verify_units

# Debian 12's own files (used when unattended-upgrades is not installed here):
# the point-release origin of 50unattended-upgrades must not survive our #clear,
# and 20auto-upgrades' values are overridden.
DEBIAN_DEFAULT = """\
Unattended-Upgrade::Origins-Pattern {
        "origin=Debian,codename=${distro_codename}-updates";
        "origin=Debian,codename=${distro_codename},label=Debian";
        "origin=Debian,codename=${distro_codename},label=Debian-Security";
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
};
Unattended-Upgrade::Automatic-Reboot "false";
"""
AUTO_UPGRADES = 'APT::Periodic::Update-Package-Lists "0";\nAPT::Periodic::Unattended-Upgrade "0";\n'
SECURITY = {
    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
    "origin=Debian,codename=${distro_codename},label=Debian-Security",
}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _inside(window, hhmm: str) -> bool:
    start, end, t = _minutes(window.start), _minutes(window.end), _minutes(hhmm)
    return start <= t < end if start < end else (t >= start or t < end)  # windows may cross midnight


def apt_config_dump(staging_root: Path, tmp_path: Path) -> dict[str, list[str]]:
    apt_config = require_tool("apt-config")
    parts = tmp_path / "apt.conf.d"
    parts.mkdir()
    real_default = Path("/etc/apt/apt.conf.d/50unattended-upgrades")
    (parts / "50unattended-upgrades").write_text(real_default.read_text() if real_default.exists() else DEBIAN_DEFAULT)
    (parts / "20auto-upgrades").write_text(AUTO_UPGRADES)
    shutil.copy(staged(staging_root, UNATTENDED_UPGRADES_PATH), parts)
    main = tmp_path / "apt.conf"
    main.write_text(f'Dir::Etc::Parts "{parts}";\n')
    result = subprocess.run([apt_config, "dump"], capture_output=True, text=True, timeout=30,
                            env={"APT_CONFIG": str(main), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    values: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append(value.rstrip(";").strip('"'))
    return values


def test_swu01_apt_enables_daily_security_only_upgrades_with_reboot_in_window(staging_root, settings, tmp_path):
    values = apt_config_dump(staging_root, tmp_path)
    assert values["APT::Periodic::Update-Package-Lists"] == ["1"]      # daily
    assert values["APT::Periodic::Unattended-Upgrade"] == ["1"]        # daily
    assert set(values["Unattended-Upgrade::Origins-Pattern::"]) == SECURITY
    assert values["Unattended-Upgrade::Automatic-Reboot"] == ["true"]
    assert values["Unattended-Upgrade::Automatic-Reboot-WithUsers"] == ["true"]
    (reboot,) = values["Unattended-Upgrade::Automatic-Reboot-Time"]
    window = settings.maintenance_window
    assert reboot == window.reboot_time
    assert _inside(window, reboot), (reboot, window.start, window.end)


def test_swu01_inside_window_check_can_fail(settings):
    window = settings.maintenance_window
    assert not _inside(window, window.end)
    assert not _inside(window, f"{(_minutes(window.start) - 1) // 60 % 24:02d}:{(_minutes(window.start) - 1) % 60:02d}")


def test_swu01_timer_fires_daily_at_window_start(staging_root, settings):
    analyze = require_tool("systemd-analyze")
    override = staged(staging_root, APT_TIMER_OVERRIDE_PATH)
    lines = override.read_text().splitlines()
    specs = [line[len("OnCalendar="):] for line in lines if line.startswith("OnCalendar=")]
    assert specs[0] == ""  # resets Debian's own OnCalendar=*-*-* 6:00 first
    (spec,) = specs[1:]
    result = subprocess.run([analyze, "calendar", "--iterations=3", spec], capture_output=True, text=True, timeout=30,
                            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert f"Normalized form: {spec}" in result.stdout
    elapses = [line.split(": ", 1)[1] for line in result.stdout.splitlines()
               if "Next elapse:" in line or line.strip().startswith("Iter.")]
    assert len(elapses) == 3
    times = [e.split()[2] for e in elapses]
    assert set(times) == {f"{settings.maintenance_window.start}:00"}
    days = [e.split()[1] for e in elapses]
    assert len(set(days)) == 3  # once a day
    assert "RandomizedDelaySec=0" in lines and "Persistent=false" in lines


def test_swu01_timer_override_passes_systemd_analyze_verify(staging_root, tmp_path):
    timer = Path("/lib/systemd/system/apt-daily-upgrade.timer")
    if not timer.exists():
        require_tool("unattended-upgrade")  # the apt package ships the timer; fail/skip clearly
    units = staged(staging_root, "/etc/systemd/system")
    shutil.copy(timer, units)  # beside the staged .d drop-in, which systemd merges into it
    result = verify_units(staging_root, units / "apt-daily-upgrade.timer")
    assert result.returncode == 0 and result.stderr == "", result.stderr
