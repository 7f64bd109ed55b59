"""fail2ban jails for sshd and Odoo logins, banning through nftables (ACC-04);
a burst of bans reaches the client's incident channel (INC-01)."""

from __future__ import annotations

from components.settings import Settings

from .paths import (
    FAIL2BAN_ALERT_ACTION_NAME,
    FAIL2BAN_ALERT_ACTION_PATH,
    FAIL2BAN_JAIL_PATH,
    FAIL2BAN_ODOO_FILTER_NAME,
    FAIL2BAN_ODOO_FILTER_PATH,
    NOTIFY_SCRIPT_PATH,
    ODOO_LOG_PATH,
)

MAX_RETRY = 5
FIND_TIME = "10m"
BAN_TIME = "1h"

# Bookworm's fail2ban 1.0.2 action.d/nftables.conf takes table, chain,
# chain_type, chain_hook, chain_priority and blocktype as parameters.
# The Odoo jail bans before Docker's DNAT (dstnat = -100): traffic to the
# proxy's published ports is DNATed in prerouting and then forwarded, so a
# ban in the input hook would never see it.
ODOO_BAN_CHAIN = "f2b-odoo-prerouting"
ODOO_BAN_HOOK = "prerouting"
ODOO_BAN_PRIORITY = -150

BAN_ALERT_THRESHOLD = 10
BAN_ALERT_WINDOW_SECONDS = 3600
"""INC-01: this many bans (all jails together) within this window send ONE alert;
the next can come a window later. A few bans a day are background noise on any
public host; ten an hour is a campaign the client should hear about."""
BAN_ALERT_TIMEOUT = "5m"
"""The notifier reads three secrets from Vault and publishes; a hung one is killed."""


def render_fail2ban_jail(settings: Settings) -> str:
    del settings  # same jails for every client; kept for a uniform signature
    return f"""\
# {FAIL2BAN_JAIL_PATH}: managed by odoo-hosting (ACC-04, INC-01).
# jail.d/*.local is read after Debian's jail.d/defaults-debian.conf, so
# these values win. Bans go through nftables (fail2ban's own inet table);
# {FAIL2BAN_ALERT_ACTION_NAME} counts them and reports a burst to the incident channel.

[DEFAULT]
maxretry = {MAX_RETRY}
findtime = {FIND_TIME}
bantime = {BAN_TIME}
banaction = nftables-multiport
banaction_allports = nftables-allports

[sshd]
# SSH answers only inside the WireGuard tunnel; the jail still guards it.
# Debian 12 logs sshd to the journal only (no /var/log/auth.log).
enabled = true
backend = systemd
port = 22
action = %(action_)s
         {FAIL2BAN_ALERT_ACTION_NAME}

[odoo]
# Docker DNATs the TLS proxy's published ports in prerouting and forwards
# them: an input-hook ban never sees that traffic. This chain hooks prerouting
# at {ODOO_BAN_PRIORITY}, before Docker's dstnat (-100). Drop: reject is not valid there.
enabled = true
filter = {FAIL2BAN_ODOO_FILTER_NAME}
logpath = {ODOO_LOG_PATH}
backend = auto
logtimezone = UTC
port = 80,443
action = nftables-multiport[name=odoo, port="80,443", protocol=tcp, chain={ODOO_BAN_CHAIN}, chain_hook={ODOO_BAN_HOOK}, chain_priority={ODOO_BAN_PRIORITY}, blocktype=drop]
         {FAIL2BAN_ALERT_ACTION_NAME}
"""  # noqa: E501  (a template: its long lines are the rendered file's)


def render_fail2ban_alert_action() -> str:
    # fail2ban runs a jail's actions one after the other: in the background,
    # with stdio detached (fail2ban may read the pipes), a slow or failing
    # notifier never delays or breaks the next ban; its output goes to the journal.
    return f"""\
# {FAIL2BAN_ALERT_ACTION_PATH}: managed by odoo-hosting (INC-01).
# <threshold> bans within <window> seconds: ONE alert to the incident channel.
[Definition]
actionban = {{ timeout {BAN_ALERT_TIMEOUT} <notify> --ban <name> <ip> <threshold> <window> 2>&1 | logger -t odoo-hosting-notify; }} </dev/null >/dev/null 2>&1 &

[Init]
notify = {NOTIFY_SCRIPT_PATH}
threshold = {BAN_ALERT_THRESHOLD}
window = {BAN_ALERT_WINDOW_SECONDS}
"""  # noqa: E501  (a template: its long lines are the rendered file's)


def render_fail2ban_odoo_filter() -> str:
    # Odoo's line: "<date> <pid> INFO <db> odoo.addons.base.models.res_users:
    # Login failed for db:<db> login:<login> from <ip>". The login is chosen
    # by the attacker, so the greedy ".*" plus the end anchor take the LAST
    # " from <ip>": a login containing " from 1.2.3.4" cannot frame 1.2.3.4.
    return f"""\
# {FAIL2BAN_ODOO_FILTER_PATH}: managed by odoo-hosting (ACC-04).
# Failed Odoo logins, as Odoo's res_users logs them.

[Definition]
_odoo_prefix = ^\\s*\\d+ INFO \\S+ odoo\\.addons\\.base\\.models\\.res_users:
failregex = %(_odoo_prefix)s Login failed for db:\\S* login:.* from <ADDR>\\s*$
ignoreregex = %(_odoo_prefix)s Login successful for db:

# Odoo's default format: "2024-05-01 12:00:00,123 ..." at the start of the line.
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S(?:,%%f)?
"""
