"""ACC-04: fail2ban's own verdict on the jails and the Odoo filter, and a LIVE ban.

The live ban runs fail2ban-server in the foreground inside a network namespace
made by the test, with a staging copy of /etc/fail2ban (our materialised
jail.d, filter.d and action.d files), its own socket and pid file, an
in-memory database, and the Odoo jail on the polling backend reading a test log. The sshd jail is
disabled there: its systemd backend needs a running journald, which these
machines lack (its configuration is still checked by ``fail2ban-client -t``).
A Docker-like DNAT (443 -> 8443) sits in the namespace so the ban is shown to
act BEFORE the rewrite, as the jail's prerouting hook promises. The INC-01
alert action runs on every ban, with a slow, failing stand-in for the notifier
(tests/backup runs the real one against a local SNS).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.hostconfig import (
    BAN_ALERT_THRESHOLD,
    BAN_ALERT_WINDOW_SECONDS,
    BAN_TIME,
    FAIL2BAN_ALERT_ACTION_NAME,
    FAIL2BAN_ALERT_ACTION_PATH,
    FAIL2BAN_JAIL_PATH,
    FAIL2BAN_ODOO_FILTER_PATH,
    FIND_TIME,
    MAX_RETRY,
    NOTIFY_SCRIPT_PATH,
    ODOO_LOG_PATH,
)
from tests.conftest import require_tool

from .helpers import listen, probe_many, staged, wait_for

PREFIX = "2024-05-01 12:00:{:02d},123 7 INFO acme odoo.addons.base.models.res_users: "
FAILED_V4 = PREFIX.format(0) + "Login failed for db:acme login:admin from 203.0.113.5"
FAILED_V6 = PREFIX.format(1) + "Login failed for db:acme login:bob from 2001:db8::42"
# The login is attacker-chosen: only the LAST " from <ip>" is the client.
INJECTION = PREFIX.format(2) + "Login failed for db:acme login:x from 1.2.3.4 from 198.51.100.7"
SUCCESS = PREFIX.format(3) + "Login successful for db:acme login:admin from 192.0.2.9"
OTHER = "2024-05-01 12:00:04,123 7 INFO acme werkzeug: 192.0.2.10 - - \"POST /web/login HTTP/1.1\" 200 -"

HOST, ATTACKER, BYSTANDER = "192.0.2.1", "192.0.2.66", "192.0.2.77"
HOST6, ATTACKER6 = "2001:db8:f2b::1", "2001:db8:f2b::66"
NOTIFIER_HANG = 30


def staging_fail2ban(staging_root: Path, directory: Path, log: Path, extra_jail: str = "",
                     notify: Path | None = None) -> Path:
    """A copy of the installed /etc/fail2ban with our materialised files; the Odoo log at ``log``,
    and the alert action's notifier at ``notify`` when given."""
    require_tool("fail2ban-client")
    if not Path("/etc/fail2ban/jail.conf").exists():
        pytest.fail("fail2ban-client is installed but /etc/fail2ban/jail.conf is missing")
    conf = directory / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    jail = staged(staging_root, FAIL2BAN_JAIL_PATH).read_text()
    assert f"logpath = {ODOO_LOG_PATH}" in jail
    (conf / "jail.d" / Path(FAIL2BAN_JAIL_PATH).name).write_text(jail.replace(ODOO_LOG_PATH, str(log)))
    shutil.copy(staged(staging_root, FAIL2BAN_ODOO_FILTER_PATH), conf / "filter.d")
    shutil.copy(staged(staging_root, FAIL2BAN_ALERT_ACTION_PATH), conf / "action.d")
    if notify:
        # fail2ban reads action.d/<name>.local after <name>.conf: only the notifier's path changes.
        (conf / "action.d" / f"{FAIL2BAN_ALERT_ACTION_NAME}.local").write_text(f"[Init]\nnotify = {notify}\n")
    if extra_jail:
        (conf / "jail.d" / "zz-test.local").write_text(extra_jail)
    return conf


def test_acc04_fail2ban_client_accepts_jails(staging_root, tmp_path):
    """Both jails load: sshd on the systemd backend, Odoo on its (first-boot) log, bans via nftables."""
    client = require_tool("fail2ban-client")
    log = staged(staging_root, ODOO_LOG_PATH)
    assert log.exists() and log.read_text() == ""  # written by cloud-init: exists at first boot
    conf = staging_fail2ban(staging_root, tmp_path, log)
    result = subprocess.run([client, "-c", str(conf), "-t"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    dump = subprocess.run([client, "-c", str(conf), "-d"], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert "['add', 'sshd', 'systemd']" in dump.stdout
    assert "['add', 'odoo', 'auto']" in dump.stdout
    assert f"['set', 'odoo', 'logpath', '{log}'" in dump.stdout or str(log) in dump.stdout
    assert "hook prerouting priority -150" in dump.stdout
    for jail in ("sshd", "odoo"):
        assert f"['set', '{jail}', 'maxretry', {MAX_RETRY}]" in dump.stdout
        assert f"['set', '{jail}', 'findtime', '{FIND_TIME}']" in dump.stdout
        assert f"['set', '{jail}', 'bantime', '{BAN_TIME}']" in dump.stdout
    assert "nft " in dump.stdout
    lines = dump.stdout.splitlines()
    for jail in ("sshd", "odoo"):
        # INC-01: every ban is also counted by the notifier, after the nftables ban itself.
        added = [line for line in lines if line.startswith(f"['set', '{jail}', 'addaction', ")]
        assert added == [f"['set', '{jail}', 'addaction', 'nftables-multiport']",
                         f"['set', '{jail}', 'addaction', '{FAIL2BAN_ALERT_ACTION_NAME}']"]
        command = (f"{NOTIFY_SCRIPT_PATH} --ban {jail} <ip> {BAN_ALERT_THRESHOLD} {BAN_ALERT_WINDOW_SECONDS} "
                   "2>&1 | logger -t odoo-hosting-notify; } </dev/null >/dev/null 2>&1 &")
        assert any(line.startswith(f"['multi-set', '{jail}', 'action', '{FAIL2BAN_ALERT_ACTION_NAME}', "
                                   "[['actionban', '{ timeout ") and command in line for line in lines), jail


def test_acc04_jails_need_the_odoo_log_that_cloud_init_writes(staging_root, tmp_path):
    """Why write_files creates the empty odoo.log: without it fail2ban refuses the jails
    (and would not start at first boot, before Odoo has logged anything)."""
    client = require_tool("fail2ban-client")
    conf = staging_fail2ban(staging_root, tmp_path, tmp_path / "no-such-odoo.log")
    result = subprocess.run([client, "-c", str(conf), "-t"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Have not found any log file for odoo jail" in result.stdout + result.stderr


def _regex(tmp_path: Path, filter_path: Path, lines: list[str]) -> str:
    tool = require_tool("fail2ban-regex")
    log = tmp_path / "sample.log"
    log.write_text("\n".join(lines) + "\n")
    result = subprocess.run([tool, "-v", str(log), str(filter_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _matched_addresses(output: str) -> list[str]:
    tool_lines = output.split("Failregex:", 1)[1].split("`-", 1)[0].splitlines()
    return [line.split()[1] for line in tool_lines if line.startswith("|      ")]


def test_acc04_filter_catches_failed_odoo_logins_ipv4_and_ipv6(staging_root, tmp_path):
    output = _regex(tmp_path, staged(staging_root, FAIL2BAN_ODOO_FILTER_PATH), [FAILED_V4, FAILED_V6])
    assert "2 matched" in output
    assert _matched_addresses(output) == ["203.0.113.5", "2001:db8::42"]


def test_acc04_filter_bans_the_client_not_an_address_injected_in_the_login(staging_root, tmp_path):
    output = _regex(tmp_path, staged(staging_root, FAIL2BAN_ODOO_FILTER_PATH), [INJECTION])
    assert "1 matched" in output
    assert _matched_addresses(output) == ["198.51.100.7"]


def test_acc04_filter_ignores_successful_logins_and_other_lines(staging_root, tmp_path):
    output = _regex(tmp_path, staged(staging_root, FAIL2BAN_ODOO_FILTER_PATH), [SUCCESS, OTHER])
    assert "0 matched" in output


# ---- a live ban --------------------------------------------------------------------------------

DOCKER_LIKE_DNAT = f"""\
table ip docker_like {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport 443 dnat to {HOST}:8443
        tcp dport 80 dnat to {HOST}:8080
    }}
}}
table ip6 docker_like6 {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport 443 dnat to [{HOST6}]:8443
        tcp dport 80 dnat to [{HOST6}]:8080
    }}
}}
"""


def _odoo_line(ip: str, login: str = "admin") -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S,000")
    return f"{now} 7 INFO acme odoo.addons.base.models.res_users: Login failed for db:acme login:{login} from {ip}"


def _stop_stand_ins(calls: Path) -> None:
    """Stop the hanging notifier stand-ins the test's bans started, by the ids they recorded: each
    with its sleep and the action's ``timeout``, their own process group (GNU timeout makes one)."""
    for line in (calls.read_text() if calls.exists() else "").splitlines():
        try:
            group = os.getpgid(int(line.split()[0]))
        except ProcessLookupError:
            continue
        if group != os.getpgid(0):
            os.killpg(group, signal.SIGKILL)


def test_acc04_live_ban_after_max_failures_drops_only_the_attacker_before_dnat(staging_root, tmp_path, netns):
    server = require_tool("fail2ban-server")
    client = require_tool("fail2ban-client")
    nft = require_tool("nft")
    log = tmp_path / "odoo.log"
    log.write_text("")
    # The alert action's notifier: records its arguments, then hangs and fails. fail2ban
    # runs a jail's actions one after the other, so a notifier run in the foreground
    # would hold back the second ban by NOTIFIER_HANG seconds, past the wait below.
    calls = tmp_path / "notify-calls"
    notifier = tmp_path / "notify"
    notifier.write_text(f'#!/bin/sh\necho "$$ $*" >> {calls}\nsleep {NOTIFIER_HANG}\nexit 1\n')
    notifier.chmod(0o755)
    netns.cleanups.append(lambda: _stop_stand_ins(calls))
    conf = staging_fail2ban(staging_root, tmp_path, log, notify=notifier, extra_jail=(
        "[sshd]\nenabled = false\n\n[odoo]\nbackend = polling\n"))
    (conf / "fail2ban.local").write_text("[Definition]\ndbfile = :memory:\n")
    sock, pid = tmp_path / "f2b.sock", tmp_path / "f2b.pid"

    host = netns.add("f2b")
    outside = netns.add("web")
    netns.veth(host, "eth0", [f"{HOST}/24", f"{HOST6}/64"],
               outside, "eth0", [f"{ATTACKER}/24", f"{BYSTANDER}/24", f"{ATTACKER6}/64"])
    netns.run(host, nft, "-f", "-", input=DOCKER_LIKE_DNAT)
    listen(netns, host, "::", tcp=[8080, 8443])  # the "container" behind the DNAT
    jobs = [("attacker", ATTACKER, HOST, ["tcp/443", "tcp/80"]),
            ("attacker6", ATTACKER6, HOST6, ["tcp/443"]),
            ("bystander", BYSTANDER, HOST, ["tcp/443", "tcp/80"])]
    assert set(probe_many(netns, outside, jobs).values()) == {"open"}

    daemon = netns.spawn(host, server, "-f", "-x", "-c", str(conf), "-s", str(sock), "-p", str(pid),
                         "--logtarget", "stderr", "--loglevel", "INFO", output=tmp_path / "fail2ban.log")

    def status() -> str:
        if daemon.poll() is not None:
            raise AssertionError("fail2ban-server exited: " + netns.stop(daemon))
        result = netns.run(host, client, "-s", str(sock), "status", "odoo", check=False)
        return result.stdout if result.returncode == 0 else ""

    wait_for(lambda: "Currently failed" in status(), timeout=20, what="fail2ban-server with the odoo jail")
    # MAX_RETRY - 1 failures from each; the injected line frames the bystander
    # in the login name but comes from the attacker: only the attacker reaches MAX_RETRY.
    lines = [_odoo_line(ATTACKER) for _ in range(MAX_RETRY - 1)]
    lines += [_odoo_line(BYSTANDER) for _ in range(MAX_RETRY - 1)]
    lines.append(_odoo_line(ATTACKER, login=f"x from {BYSTANDER}"))
    lines += [_odoo_line(ATTACKER6) for _ in range(MAX_RETRY)]
    with log.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        banned = wait_for(lambda: (lambda text: all(ip in text.split("Banned IP list:", 1)[-1]
                                                    for ip in (ATTACKER, ATTACKER6)) and text)(status()),
                          timeout=15, what=f"bans of {ATTACKER} and {ATTACKER6}")
    except AssertionError as error:
        raise AssertionError(f"{error}; jail status:\n{status()}") from None
    assert BYSTANDER not in banned.split("Banned IP list:", 1)[1]
    # fail2ban lists a ban before its actions run (the first IPv6 ban also creates the
    # ip6 set): wait for nftables to hold both addresses before probing.
    wait_for(lambda: all(ip in netns.run(host, nft, "list", "ruleset").stdout for ip in (ATTACKER, ATTACKER6)),
             timeout=15, what="both bans in nftables")
    seen = probe_many(netns, outside, jobs)
    assert seen == {"attacker tcp/443": "dropped", "attacker tcp/80": "dropped", "attacker6 tcp/443": "dropped",
                    "bystander tcp/443": "open", "bystander tcp/80": "open"}
    ruleset = netns.run(host, nft, "list", "ruleset").stdout
    # nft prints priority -150 by its name, "mangle": before Docker's dstnat (-100).
    chain = ruleset.split("chain f2b-odoo-prerouting", 1)[1]
    assert re.search(r"type filter hook prerouting priority (mangle|-150);", chain), chain
    assert "tcp dport { 80, 443 } ip saddr @addr-set-odoo drop" in chain
    assert "tcp dport { 80, 443 } ip6 saddr @addr6-set-odoo drop" in chain
    assert ATTACKER in ruleset and ATTACKER6 in ruleset
    assert netns.run(host, client, "-s", str(sock), "get", "odoo", "bantime").stdout.strip() == "3600"
    recorded = wait_for(lambda: (lambda text: text.count("\n") >= 2 and text)(
        calls.read_text() if calls.exists() else ""), timeout=10, what="two runs of the alert action")
    runs = sorted(line.split(" ", 1)[1] for line in recorded.splitlines())
    assert runs == sorted(f"--ban odoo {ip} {BAN_ALERT_THRESHOLD} {BAN_ALERT_WINDOW_SECONDS}"
                          for ip in (ATTACKER, ATTACKER6))
    output = netns.stop(daemon)
    assert f"Ban {ATTACKER}" in output, output
    # Backgrounded: fail2ban saw neither the hang nor the failure.
    assert "timed out" not in output and "returned 1" not in output and " ERROR " not in output, output
