"""hcloud-server-backup-agent (BKP-01/02/03, INC-01): a compliant baseline, then one change per test."""

from __future__ import annotations

import pytest
import yaml

from odoo_hosting_policies.backupagent import (
    backup_agent_findings,
    calendar_period,
    hcloud_server_backup_agent,
    span_seconds,
)
from odoo_hosting_policies.cloudconfig import judge_text
from tests.conftest import EXAMPLE_STACKS
from tests.policy.conftest import (
    SERVER,
    good_server,
    host_stack,
    rendered_host,
    repin,
    run_policy,
    run_stack_policy,
)

BASELINE = """\
#cloud-config
write_files:
  - path: /usr/local/sbin/backup
    permissions: '0700'
    content: |
      #!/bin/bash
      export RESTIC_PASSWORD_COMMAND="/usr/local/sbin/odoo-hosting-secret --path backup restic-password"
      export RESTIC_REPOSITORY=s3:https://s3.eu-central-1.amazonaws.com/bucket/restic
      case "$1" in
        run) restic backup /srv/data ;;
        check) restic check ;;
      esac
  - path: /etc/systemd/system/backup.service
    content: |
      [Unit]
      OnFailure=report-failure@%n.service
      [Service]
      Type=oneshot
      ExecStart=/usr/local/sbin/backup run
  - path: /etc/systemd/system/backup.timer
    content: |
      [Timer]
      OnCalendar=*-*-* 01:30:00 UTC
      Persistent=true
  - path: /etc/systemd/system/backup-check.service
    content: |
      [Unit]
      OnFailure=report-failure@%n.service
      [Service]
      Type=oneshot
      ExecStart=/usr/local/sbin/backup check
  - path: /etc/systemd/system/backup-check.timer
    content: |
      [Timer]
      OnCalendar=Sun *-*-* 02:30:00 UTC
runcmd:
  - [systemctl, enable, --now, backup.timer, backup-check.timer]
"""


def _server(user_data: str) -> dict:
    props = good_server()
    props["userData"] = user_data
    return props


def violations(user_data: str) -> list[str]:
    return run_policy(hcloud_server_backup_agent, SERVER, _server(user_data))


def test_baseline_is_compliant():
    assert violations(BASELINE) == []


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_rendered_agent_of_both_examples_is_compliant(stack):
    """The agent comes in the host bundle user-data pins (render_host's .bundle)."""
    host = rendered_host(stack)
    assert run_stack_policy(hcloud_server_backup_agent, host_stack(host.user_data, host.bundle, pin=host.pin)) == []


def test_the_rendered_agent_is_in_the_bundle_not_in_user_data():
    host = rendered_host()
    findings, not_judgeable = judge_text(host.user_data, backup_agent_findings)
    assert not_judgeable is None and any("daily backup" in f for f in findings)


def test_a_broken_agent_in_the_rendered_bundle_is_a_violation():
    host = rendered_host()
    bundle = host.bundle.replace("OnFailure=odoo-hosting-backup-failed@%n.service\n", "", 1)
    assert bundle != host.bundle
    [message] = run_stack_policy(hcloud_server_backup_agent,
                                 host_stack(repin(host.user_data, host.bundle, bundle), bundle, pin=host.pin))
    assert "odoo-hosting-backup.service has no OnFailure=" in message and "host bundle" in message


def test_no_backup_timer_at_all_is_a_violation():
    [message, check] = violations("#cloud-config\npackages: [restic]\n")
    assert "daily backup" in message and "weekly repository check" in check


def test_a_weekly_backup_is_a_violation():
    [message] = violations(BASELINE.replace("OnCalendar=*-*-* 01:30:00 UTC", "OnCalendar=weekly"))
    assert "every 7 day(s)" in message and "daily backup" in message


def test_a_monthly_check_is_a_violation():
    [message] = violations(BASELINE.replace("OnCalendar=Sun *-*-* 02:30:00 UTC", "OnCalendar=monthly"))
    assert "restic check only every 28 day(s)" in message


def test_a_timer_never_enabled_is_a_violation():
    [message] = violations(BASELINE.replace("backup.timer, backup-check.timer", "backup-check.timer"))
    assert "backup.timer is not enabled" in message


def test_a_service_without_failure_hook_is_a_violation():
    text = BASELINE.replace("      [Unit]\n      OnFailure=report-failure@%n.service\n      [Service]\n      Type=oneshot\n"
                            "      ExecStart=/usr/local/sbin/backup run",
                            "      [Service]\n      Type=oneshot\n      ExecStart=/usr/local/sbin/backup run")
    [message] = violations(text)
    assert "backup.service has no OnFailure=" in message and "INC-01" in message


@pytest.mark.parametrize("leak", [
    'export RESTIC_PASSWORD=hunter2-hunter2',
    "export RESTIC_PASSWORD_FILE=/root/.restic",
    "restic --password-file /root/pw snapshots",
    "true;RESTIC_PASSWORD=hunter2-hunter2 restic snapshots",
    "env 'RESTIC_PASSWORD=hunter2-hunter2' restic snapshots",
    # The flag starts a word inside what an earlier, non-word-start match would cover.
    "MY_RESTIC_PASSWORD= --password-file /root/pw",
])
def test_a_password_at_rest_is_a_violation(leak):
    text = BASELINE.replace("      case \"$1\" in", f"      {leak}\n      case \"$1\" in")
    [message] = violations(text)
    assert "password is stored on the host" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("lookalike", [
    "export MY_RESTIC_PASSWORD=hunter2-hunter2",
    'export RESTIC_PASSWORD="$(vault-read restic)"',
    "echo x--password-file",
])
def test_lookalikes_of_a_password_at_rest_are_not_violations(lookalike):
    text = BASELINE.replace("      case \"$1\" in", f"      {lookalike}\n      case \"$1\" in")
    assert text != BASELINE
    assert violations(text) == []


@pytest.mark.parametrize("url,region", [
    ("s3:https://s3.us-east-1.amazonaws.com/bucket", "us-east-1"),
    ("s3:https://s3.amazonaws.com/bucket", "us-east-1"),
    ("s3:s3.ap-southeast-2.amazonaws.com/bucket", "ap-southeast-2"),
])
def test_a_repository_outside_the_eu_is_a_violation(url, region):
    [message] = violations(BASELINE.replace("s3:https://s3.eu-central-1.amazonaws.com/bucket", url))
    assert region in message and "BKP-02" in message


def test_a_foreign_gz_b64_write_files_entry_is_decoded():
    """Other programs' cloud-configs may encode files (cloud-init decodes them); so does the pack."""
    import base64
    import gzip
    doc = yaml.safe_load(BASELINE)
    script = doc["write_files"][0]
    script["content"] = base64.b64encode(gzip.compress(script["content"].replace("restic backup", "restic forget")
                                                       .encode())).decode()
    script["encoding"] = "gz+b64"
    [message, *_] = violations("#cloud-config\n" + yaml.safe_dump(doc))
    assert "daily backup" in message


def test_a_server_without_user_data_is_a_violation():
    props = good_server()
    props.pop("userData", None)
    [message] = run_policy(hcloud_server_backup_agent, SERVER, props)
    assert "no userData" in message


def test_an_unreadable_schedule_is_reported_not_passed():
    messages = violations(BASELINE.replace("OnCalendar=*-*-* 01:30:00 UTC", "OnCalendar=*-*-01 00:00"))
    assert any("cannot be read" in m for m in messages)


@pytest.mark.parametrize("expression,days", [
    ("daily", 1), ("*-*-* 03:00", 1), ("03:00", 1), ("Mon..Sun *-*-* 01:00", 1), ("Mon..Fri 02:00", 3),
    ("Sun *-*-* 01:30:00 UTC", 7), ("weekly", 7), ("Mon,Thu 03:00", 4),
])
def test_calendar_periods(expression, days):
    assert calendar_period(expression) == days * 86400


def test_spans():
    assert span_seconds("1d") == 86400 and span_seconds("12h 30min") == 45000 and span_seconds("soon") is None
