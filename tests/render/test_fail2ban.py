"""ACC-04: fail2ban jails and the Odoo login filter, by content (tests/system runs fail2ban on them)."""

from __future__ import annotations

import configparser

from components.hostconfig import (
    FAIL2BAN_JAIL_PATH, FAIL2BAN_ODOO_FILTER_PATH, ODOO_LOG_PATH, render_fail2ban_jail,
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
