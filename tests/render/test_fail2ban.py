"""ACC-04: fail2ban jails and the Odoo login filter, checked by fail2ban itself."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from components.hostconfig import (
    FAIL2BAN_JAIL_PATH, FAIL2BAN_ODOO_FILTER_PATH, ODOO_LOG_PATH, render_fail2ban_jail,
    render_fail2ban_odoo_filter, write_files,
)
from tests.conftest import require_tool

PREFIX = "2024-05-01 12:00:{:02d},123 7 INFO acme odoo.addons.base.models.res_users: "
FAILED_V4 = PREFIX.format(0) + "Login failed for db:acme login:admin from 203.0.113.5"
FAILED_V6 = PREFIX.format(1) + "Login failed for db:acme login:bob from 2001:db8::42"
# The login is attacker-chosen: only the LAST " from <ip>" is the client.
INJECTION = PREFIX.format(2) + "Login failed for db:acme login:x from 192.0.2.66 from 198.51.100.7"
SUCCESS = PREFIX.format(3) + "Login successful for db:acme login:admin from 192.0.2.9"
OTHER = "2024-05-01 12:00:04,123 7 INFO acme werkzeug: 192.0.2.10 - - \"POST /web/login HTTP/1.1\" 200 -"


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


@pytest.fixture
def staging(tmp_path, settings) -> Path:
    """A copy of the installed /etc/fail2ban with our files in it."""
    require_tool("fail2ban-client")
    if not Path("/etc/fail2ban/jail.conf").exists():
        pytest.fail("fail2ban-client is installed but /etc/fail2ban/jail.conf is missing")
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    log = tmp_path / "odoo.log"
    log.write_text("")
    (conf / "jail.d" / Path(FAIL2BAN_JAIL_PATH).name).write_text(
        render_fail2ban_jail(settings).replace(ODOO_LOG_PATH, str(log)))
    (conf / "filter.d" / Path(FAIL2BAN_ODOO_FILTER_PATH).name).write_text(render_fail2ban_odoo_filter())
    return conf


def test_fail2ban_client_accepts_config(staging):
    client = require_tool("fail2ban-client")
    result = subprocess.run([client, "-c", str(staging), "-t"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    dump = subprocess.run([client, "-c", str(staging), "-d"], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    # The action really hooks prerouting before DNAT, and bans through nftables.
    assert "hook prerouting priority -150" in dump.stdout
    assert "['add', 'sshd', 'systemd']" in dump.stdout
    assert "['add', 'odoo', 'auto']" in dump.stdout


def _regex(tmp_path: Path, lines: list[str]) -> str:
    tool = require_tool("fail2ban-regex")
    log = tmp_path / "sample.log"
    log.write_text("\n".join(lines) + "\n")
    filt = tmp_path / "odoo-login.conf"
    filt.write_text(render_fail2ban_odoo_filter())
    result = subprocess.run([tool, "-v", str(log), str(filt)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _matched_addresses(output: str) -> list[str]:
    tool_lines = output.split("Failregex:", 1)[1].split("`-", 1)[0].splitlines()
    return [line.split()[1] for line in tool_lines if line.startswith("|      ")]


def test_filter_matches_failures_ipv4_and_ipv6(tmp_path):
    output = _regex(tmp_path, [FAILED_V4, FAILED_V6])
    assert "2 matched" in output
    assert _matched_addresses(output) == ["203.0.113.5", "2001:db8::42"]


def test_filter_takes_last_address(tmp_path):
    output = _regex(tmp_path, [INJECTION])
    assert "1 matched" in output
    assert _matched_addresses(output) == ["198.51.100.7"]


def test_filter_ignores_successful_and_other_lines(tmp_path):
    output = _regex(tmp_path, [SUCCESS, OTHER])
    assert "0 matched" in output
