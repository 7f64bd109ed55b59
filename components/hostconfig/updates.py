"""Automatic security updates with reboots inside the maintenance window (SWU-01)."""

from __future__ import annotations

from components.settings import Settings

from .paths import APT_TIMER_OVERRIDE_PATH, UNATTENDED_UPGRADES_PATH

SECURITY_ORIGIN_PATTERNS = (
    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
    "origin=Debian,codename=${distro_codename},label=Debian-Security",
)


def render_unattended_upgrades(settings: Settings) -> str:
    window = settings.maintenance_window
    patterns = "\n".join(f'        "{p}";' for p in SECURITY_ORIGIN_PATTERNS)
    return f"""\
// {UNATTENDED_UPGRADES_PATH}: managed by odoo-hosting (SWU-01).
// Read after 20auto-upgrades and 50unattended-upgrades, so these values win.
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";

// Only the Debian security origins (Debian's default list also has the
// point-release origin; drop it so only security fixes arrive unattended).
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {{
{patterns}
}};

// Reboot when an update needs it, inside the maintenance window
// {window.start}-{window.end} UTC; the upgrade itself starts at {window.start}
// (apt-daily-upgrade.timer override).
Unattended-Upgrade::Automatic-Reboot "true";
Unattended-Upgrade::Automatic-Reboot-WithUsers "true";
Unattended-Upgrade::Automatic-Reboot-Time "{window.reboot_time}";
"""


def render_apt_timer_override(settings: Settings) -> str:
    window = settings.maintenance_window
    return f"""\
# {APT_TIMER_OVERRIDE_PATH}: managed by odoo-hosting (SWU-01).
# Run unattended-upgrade daily at the start of the maintenance window
# ({window.start}-{window.end} UTC). No random delay, and no catch-up run
# after the host was off: that would upgrade and reboot outside the window.
[Timer]
OnCalendar=
OnCalendar=*-*-* {window.start}:00 UTC
RandomizedDelaySec=0
Persistent=false
"""
