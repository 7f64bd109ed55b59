"""ACC-04/INC-01: fail2ban jails, the Odoo login filter and the alert action, by content
(tests/system runs fail2ban on them, tests/backup the notifier)."""

from __future__ import annotations

import configparser

from components.hostconfig import (
    BAN_ALERT_THRESHOLD,
    BAN_ALERT_WINDOW_SECONDS,
    FAIL2BAN_ALERT_ACTION_NAME,
    FAIL2BAN_ALERT_ACTION_PATH,
    FAIL2BAN_JAIL_PATH,
    FAIL2BAN_ODOO_FILTER_PATH,
    NOTIFY_SCRIPT_PATH,
    ODOO_LOG_PATH,
    render_fail2ban_alert_action,
    render_fail2ban_jail,
    write_files,
)


def _jail(settings) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render_fail2ban_jail(settings))
    return parser


def test_jail_file_is_read_after_debian_defaults():
    assert FAIL2BAN_JAIL_PATH.startswith("/etc/fail2ban/jail.d/") and FAIL2BAN_JAIL_PATH.endswith(".local")


def test_ban_policy(settings):
    default = _jail(settings)["DEFAULT"]
    assert int(default["maxretry"]) <= 5
    assert default["findtime"] == "10m"
    assert default["bantime"] == "1h"
    assert default["banaction"].startswith("nftables-")
    assert default["banaction_allports"] == "nftables-allports"


def test_sshd_jail(settings):
    sshd = _jail(settings)["sshd"]
    assert sshd["enabled"] == "true"
    assert sshd["backend"] == "systemd"


def test_odoo_jail_bans_before_dnat(settings):
    odoo = _jail(settings)["odoo"]
    assert odoo["enabled"] == "true"
    assert odoo["filter"] == "odoo-login"
    assert odoo["logpath"] == ODOO_LOG_PATH == "/var/log/odoo/odoo.log"
    assert odoo["backend"] == "auto"
    action = odoo["action"]
    assert action.startswith("nftables-multiport[")
    assert "chain_hook=prerouting" in action
    priority = int(action.split("chain_priority=")[1].split(",")[0].rstrip("]"))
    assert priority < -100  # Docker's dstnat
    assert "blocktype=drop" in action  # reject is not allowed in prerouting


def test_odoo_log_exists_at_first_boot(settings):
    files = {f["path"]: f for f in write_files(settings)}
    assert files[ODOO_LOG_PATH]["content"] == ""
    assert FAIL2BAN_ODOO_FILTER_PATH in files


# ---- INC-01: bans reach the incident channel ---------------------------------------------------

ODOO_BAN_ACTION = ('nftables-multiport[name=odoo, port="80,443", protocol=tcp, chain=f2b-odoo-prerouting, '
                   'chain_hook=prerouting, chain_priority=-150, blocktype=drop]')


def test_both_jails_ban_first_then_run_the_alert_action(settings):
    jail = _jail(settings)
    assert jail["sshd"]["action"].split() == ["%(action_)s", FAIL2BAN_ALERT_ACTION_NAME]
    # The Odoo jail's prerouting ban is unchanged, with the alert after it.
    assert jail["odoo"]["action"].splitlines() == [ODOO_BAN_ACTION, FAIL2BAN_ALERT_ACTION_NAME]
    assert "action" not in jail["DEFAULT"]


def test_alert_action_counts_every_ban_with_the_notifier_in_the_background():
    action = configparser.ConfigParser(interpolation=None)
    action.read_string(render_fail2ban_alert_action())
    assert f"/etc/fail2ban/action.d/{FAIL2BAN_ALERT_ACTION_NAME}.conf" == FAIL2BAN_ALERT_ACTION_PATH
    assert dict(action["Init"]) == {"notify": NOTIFY_SCRIPT_PATH, "threshold": str(BAN_ALERT_THRESHOLD),
                                    "window": str(BAN_ALERT_WINDOW_SECONDS)}
    assert (BAN_ALERT_THRESHOLD, BAN_ALERT_WINDOW_SECONDS) == (10, 3600)
    ban = action["Definition"]["actionban"]
    assert "<notify> --ban <name> <ip> <threshold> <window>" in ban
    # Detached from fail2ban: stdio closed, in the background, bounded; output to the journal.
    assert ban.startswith("{ timeout ") and ban.endswith("} </dev/null >/dev/null 2>&1 &")
    assert "| logger -t odoo-hosting-notify;" in ban
    assert set(action["Definition"]) == {"actionban"}  # nothing at start, stop or unban


def test_alert_action_is_written_as_plain_configuration(settings):
    files = {f["path"]: f for f in write_files(settings)}
    entry = files[FAIL2BAN_ALERT_ACTION_PATH]
    assert (entry["owner"], entry["permissions"], "encoding" in entry) == ("root:root", "0644", False)
    assert entry["content"] == render_fail2ban_alert_action()
