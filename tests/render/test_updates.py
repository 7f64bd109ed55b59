"""SWU-01: unattended security upgrades, by content (tests/system reads them with apt-config and systemd)."""

from __future__ import annotations

from pathlib import Path

from components.hostconfig import (
    APT_TIMER_OVERRIDE_PATH,
    UNATTENDED_UPGRADES_PATH,
    render_apt_timer_override,
    render_unattended_upgrades,
)
from tests.conftest import example_settings


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

