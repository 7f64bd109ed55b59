"""INC-01 for real: fail2ban bans counted by the rendered notifier, a burst published to moto's SNS.

The notifier and the alert action come out of the rendered cloud-config
through cloud-init's write_files; the notifier runs under the host's
/usr/bin/python3 with only the SNS endpoint, the topic, the credentials and
its ban register swapped for the test's (the variables the script documents
for tests). tests/system/test_fail2ban.py shows fail2ban running the action.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from components.hostconfig import (
    BAN_ALERT_THRESHOLD,
    BAN_ALERT_WINDOW_SECONDS,
    FAIL2BAN_ALERT_ACTION_PATH,
    NOTIFY_SCRIPT_PATH,
)
from tests.system.helpers import staged, wait_for

MINUTES = BAN_ALERT_WINDOW_SECONDS // 60


class Bans:
    """The rendered notifier in --ban mode, as the alert action calls it, with its own ban register."""

    def __init__(self, rendered: Path, topic, tmp_path: Path) -> None:
        self.notifier = staged(rendered, NOTIFY_SCRIPT_PATH)
        self.state = tmp_path / "var-lib" / "fail2ban-bans.json"
        self.env = {**topic.env, "NOTIFY_BAN_STATE": str(self.state)}
        self.topic = topic

    def ban(self, jail: str, ip: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.notifier), "--ban", jail, ip, str(BAN_ALERT_THRESHOLD),
                               str(BAN_ALERT_WINDOW_SECONDS)], env={**self.env, **env}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)

    def ban_all(self, addresses: list[str]) -> None:
        for n, ip in enumerate(addresses):
            result = self.ban("odoo" if n % 2 else "sshd", ip)
            assert result.returncode == 0, result.stderr

    def register(self) -> dict:
        return json.loads(self.state.read_text())

    def seed(self, bans: list[list], **state) -> None:
        """A register as an earlier run left it."""
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps({"bans": bans, **state}))


@pytest.fixture
def bans(rendered, incident_topic, tmp_path) -> Bans:
    return Bans(rendered, incident_topic, tmp_path)


def addresses(count: int, start: int = 1) -> list[str]:
    return [f"203.0.113.{n}" for n in range(start, start + count)]


def test_threshold_bans_in_the_window_publish_exactly_one_alert(bans, incident_topic):
    first = addresses(BAN_ALERT_THRESHOLD - 1)
    bans.ban_all(first)
    assert incident_topic.delivered() == [], "below the threshold nothing is published"
    assert len(bans.register()["bans"]) == BAN_ALERT_THRESHOLD - 1
    assert "alerted" not in bans.register()

    result = bans.ban("odoo", "2001:db8::bad")
    assert result.returncode == 0, result.stderr
    assert "reported to the incident channel" in result.stderr
    [alert] = incident_topic.delivered()
    assert alert["TopicArn"] == incident_topic.arn
    assert alert["Subject"] == (f"odoo-hosting {os.uname().nodename}: {BAN_ALERT_THRESHOLD} fail2ban bans in "
                                f"{MINUTES} min (odoo, sshd)")
    message = alert["Message"]
    assert f"{BAN_ALERT_THRESHOLD} bans within {MINUTES} minutes (threshold {BAN_ALERT_THRESHOLD}), " \
           f"jails: odoo, sshd." in message
    # The last addresses, newest first, each with its time and jail.
    listed = re.findall(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (\S+) \((\w+)\)$", message, re.MULTILINE)
    assert [ip for ip, _ in listed] == ["2001:db8::bad", *reversed(first)]
    assert listed[0][1] == "odoo" and listed[1][1] == "sshd"

    # A storm in the same window: recorded, never published again.
    bans.ban_all(addresses(2 * BAN_ALERT_THRESHOLD, start=100))
    assert incident_topic.delivered() == []
    assert len(bans.register()["bans"]) == 3 * BAN_ALERT_THRESHOLD
    assert bans.state.stat().st_mode & 0o777 == 0o600  # addresses are personal data


def test_bans_older_than_the_window_do_not_count(bans, incident_topic):
    old = time.time() - BAN_ALERT_WINDOW_SECONDS - 60
    bans.seed([[old + n, "sshd", ip] for n, ip in enumerate(addresses(2 * BAN_ALERT_THRESHOLD))])
    bans.ban_all(addresses(BAN_ALERT_THRESHOLD - 1, start=200))
    assert incident_topic.delivered() == []
    assert [b[2] for b in bans.register()["bans"]] == addresses(BAN_ALERT_THRESHOLD - 1, start=200)


def test_a_damaged_register_starts_afresh(bans, incident_topic):
    bans.state.parent.mkdir(parents=True, exist_ok=True)
    bans.state.write_text('{"bans": [[1700000000.0, "sshd", "203.0.')  # cut short: disk full, power loss
    bans.ban_all(["198.51.100.9"])
    assert [b[2] for b in bans.register()["bans"]] == ["198.51.100.9"]
    assert incident_topic.delivered() == []


def test_the_next_window_can_alert_again_but_not_sooner(bans, incident_topic):
    now = time.time()
    recent = [[now - 60 + n, "odoo", ip] for n, ip in enumerate(addresses(BAN_ALERT_THRESHOLD))]
    bans.seed(recent, alerted=now - BAN_ALERT_WINDOW_SECONDS + 120)
    bans.ban_all(["198.51.100.1"])
    assert incident_topic.delivered() == []
    bans.seed(recent, alerted=now - BAN_ALERT_WINDOW_SECONDS - 1)
    bans.ban_all(["198.51.100.2"])
    [alert] = incident_topic.delivered()
    assert f": {BAN_ALERT_THRESHOLD + 1} fail2ban bans" in alert["Subject"]


def _refused_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"  # nothing listens there once closed


def _action_command(rendered: Path, notifier: Path, jail: str, ip: str) -> str:
    """The alert action's ban command with its tags filled in, as fail2ban runs it (through /bin/sh)."""
    action = configparser.ConfigParser(interpolation=None)
    action.read_string(staged(rendered, FAIL2BAN_ALERT_ACTION_PATH).read_text())
    tags = {**action["Init"], "notify": str(notifier), "name": jail, "ip": ip}
    return re.sub(r"<(\w+)>", lambda m: tags[m.group(1)], action["Definition"]["actionban"])


def test_a_failed_publish_is_logged_does_not_reach_fail2ban_and_the_next_ban_retries(bans, incident_topic, rendered):
    bans.ban_all(addresses(BAN_ALERT_THRESHOLD - 1))
    failed = bans.ban("sshd", "192.0.2.200", NOTIFY_SNS_ENDPOINT=_refused_endpoint())
    assert failed.returncode == 1
    assert "odoo-hosting-notify: ERROR:" in failed.stderr
    assert incident_topic.delivered() == []
    assert "alerted" not in bans.register(), "an alert that was not sent is not counted as sent"

    # What fail2ban runs: the same failure returns at once with status 0 (the notifier runs on in the background).
    command = _action_command(rendered, bans.notifier, "sshd", "192.0.2.201")
    started = time.monotonic()
    action = subprocess.run(["/bin/sh", "-c", command], env={**bans.env, "NOTIFY_SNS_ENDPOINT": _refused_endpoint()},
                            capture_output=True, text=True, timeout=30)
    assert (action.returncode, action.stdout, action.stderr) == (0, "", "")
    assert time.monotonic() - started < 5
    wait_for(lambda: len(bans.register()["bans"]) == BAN_ALERT_THRESHOLD + 1, timeout=20,
             what="the background notifier to record its ban")

    # The channel is back: the next ban, through the action, sends the one alert.
    subprocess.run(["/bin/sh", "-c", _action_command(rendered, bans.notifier, "odoo", "192.0.2.202")],
                   env=bans.env, check=True, timeout=30)
    alerts = wait_for(lambda: incident_topic.delivered(wait=0), timeout=20, what="the alert")
    assert [a["Subject"].split(": ", 1)[1] for a in alerts] == [
        f"{BAN_ALERT_THRESHOLD + 2} fail2ban bans in {MINUTES} min (odoo, sshd)"]
    bans.ban_all(["192.0.2.203"])
    assert incident_topic.delivered() == []
