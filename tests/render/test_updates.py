"""SWU-01: unattended security upgrades, reboots inside the maintenance window."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from components.hostconfig import (
    APT_TIMER_OVERRIDE_PATH, UNATTENDED_UPGRADES_PATH, render_apt_timer_override, render_unattended_upgrades,
)
from tests.conftest import example_settings, require_tool

# Debian 12's own 50unattended-upgrades (the part that matters): its
# point-release origin must not survive our #clear.
DEBIAN_DEFAULT = """\
Unattended-Upgrade::Origins-Pattern {
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


def test_file_sorts_after_debian_defaults():
    name = Path(UNATTENDED_UPGRADES_PATH).name
    assert name > "50unattended-upgrades" and name > "20auto-upgrades"


def test_values(settings):
    text = render_unattended_upgrades(settings)
    assert 'APT::Periodic::Update-Package-Lists "1";' in text
    assert 'APT::Periodic::Unattended-Upgrade "1";' in text
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in text
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in text
    assert 'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";' in text
    assert f'Unattended-Upgrade::Automatic-Reboot-Time "{settings.maintenance_window.reboot_time}";' in text


def test_reboot_time_inside_window():
    for window, reboot in (("03:00-05:00", "03:15"), ("23:30-01:00", "23:45"), ("23:50-00:20", "00:05")):
        settings = example_settings("example-private", maintenanceWindow=window)
        assert f'Automatic-Reboot-Time "{reboot}"' in render_unattended_upgrades(settings)


def test_timer_runs_at_window_start(settings):
    text = render_apt_timer_override(settings)
    lines = text.splitlines()
    assert APT_TIMER_OVERRIDE_PATH == "/etc/systemd/system/apt-daily-upgrade.timer.d/odoo-hosting.conf"
    assert "[Timer]" in lines
    at = lines.index("OnCalendar=")
    assert lines[at + 1] == f"OnCalendar=*-*-* {settings.maintenance_window.start}:00 UTC"
    assert "RandomizedDelaySec=0" in lines
    assert "Persistent=false" in lines


def test_systemd_understands_calendar(settings):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        require_tool("systemd-analyze")
    spec = next(line for line in render_apt_timer_override(settings).splitlines()
                if line.startswith("OnCalendar=*"))[len("OnCalendar="):]
    result = subprocess.run([analyze or "systemd-analyze", "calendar", spec], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"Normalized form: {spec}" in result.stdout


def test_apt_config_effective_values(settings, tmp_path):
    apt_config = require_tool("apt-config")
    parts = tmp_path / "apt.conf.d"
    parts.mkdir()
    real_default = Path("/etc/apt/apt.conf.d/50unattended-upgrades")
    (parts / "50unattended-upgrades").write_text(
        real_default.read_text() if real_default.exists() else DEBIAN_DEFAULT)
    (parts / "20auto-upgrades").write_text(AUTO_UPGRADES)
    (parts / Path(UNATTENDED_UPGRADES_PATH).name).write_text(render_unattended_upgrades(settings))
    main = tmp_path / "apt.conf"
    main.write_text(f'Dir::Etc::Parts "{parts}";\n')
    result = subprocess.run([apt_config, "dump"], capture_output=True, text=True, timeout=30,
                            env={"APT_CONFIG": str(main), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    values: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append(value.rstrip(";").strip('"'))
    assert values["APT::Periodic::Update-Package-Lists"] == ["1"]
    assert values["APT::Periodic::Unattended-Upgrade"] == ["1"]
    assert set(values["Unattended-Upgrade::Origins-Pattern::"]) == SECURITY
    assert values["Unattended-Upgrade::Automatic-Reboot"] == ["true"]
    assert values["Unattended-Upgrade::Automatic-Reboot-WithUsers"] == ["true"]
    assert values["Unattended-Upgrade::Automatic-Reboot-Time"] == [settings.maintenance_window.reboot_time]
