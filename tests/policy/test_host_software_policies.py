"""ACC-04/INC-01 (fail2ban, bans reported) and SWU-01 (unattended-upgrades) judged on a server's cloud-config."""

from __future__ import annotations

import base64

import pytest

from odoo_hosting_policies import hostsoftware

from .conftest import SERVER, UNKNOWN, cloud_config, good_server, run_policy

FAIL2BAN = hostsoftware.hcloud_server_fail2ban
UPGRADES = hostsoftware.hcloud_server_unattended_upgrades

JAIL_PATH = "/etc/fail2ban/jail.d/00-odoo-hosting.local"
JAIL = """\
[DEFAULT]
maxretry = 5
findtime = 10m
bantime = 1h
banaction = nftables-multiport
banaction_allports = nftables-allports

[sshd]
enabled = true
backend = systemd
action = %(action_)s
         odoo-hosting-alert

[odoo]
enabled = true
filter = odoo-login
logpath = /var/log/odoo/odoo.log
action = nftables-multiport[name=odoo, port="80,443", protocol=tcp, blocktype=drop]
         odoo-hosting-alert
"""
ALERT_PATH = "/etc/fail2ban/action.d/odoo-hosting-alert.conf"
ALERT = """\
[Definition]
actionban = { timeout 5m <notify> --ban <name> <ip> <threshold> <window> 2>&1 | logger; } </dev/null >/dev/null 2>&1 &

[Init]
notify = /usr/local/sbin/odoo-hosting-notify
threshold = 10
window = 3600
"""

APT_PATH = "/etc/apt/apt.conf.d/52odoo-hosting-unattended-upgrades"
APT = """\
// managed by odoo-hosting
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
};
Unattended-Upgrade::Automatic-Reboot "true";
Unattended-Upgrade::Automatic-Reboot-Time "03:15";
"""


def file_entry(path: str, content: str, extra: str = "") -> str:
    body = "".join(f"      {line}\n" for line in content.splitlines())
    return f"  - path: {path}\n{extra}    content: |\n{body}"


def server(jail: str = JAIL, apt: str = APT, *, alert: str = ALERT, files: str = "", extra: str = ""):
    props = good_server()
    entries = (file_entry(JAIL_PATH, jail) if jail is not None else "") + \
        (file_entry(ALERT_PATH, alert) if alert is not None else "") + \
        (file_entry(APT_PATH, apt) if apt is not None else "") + files
    props["userData"] = cloud_config(extra_files=entries, extra=extra)
    return props


def test_compliant_server_passes_both():
    assert run_policy(FAIL2BAN, SERVER, server()) == []
    assert run_policy(UPGRADES, SERVER, server()) == []


# --- fail2ban --------------------------------------------------------------------

def test_no_jail_file_leaves_debian_defaults_which_are_too_weak():
    messages = run_policy(FAIL2BAN, SERVER, server(jail=None))
    text = " ".join(messages)
    assert "bantime 10m" in text and "iptables" in text and "Odoo" in text


@pytest.mark.parametrize("old,new,words", [
    ("maxretry = 5", "maxretry = 6", "maxretry 6"),
    ("findtime = 10m", "findtime = 5m", "findtime 5m"),
    ("findtime = 10m", "findtime = 599", "findtime 599"),
    ("bantime = 1h", "bantime = 59m", "bantime 59m"),
    ("bantime = 1h", "bantime = 3599", "bantime 3599"),
    ("banaction = nftables-multiport", "banaction = iptables-multiport", "iptables-multiport"),
])
def test_weak_default_value_is_a_violation(old, new, words):
    messages = run_policy(FAIL2BAN, SERVER, server(jail=JAIL.replace(old, new)))
    assert messages and any(words in m for m in messages)


@pytest.mark.parametrize("old,new", [("bantime = 1h", "bantime = 2 hours"), ("bantime = 1h", "bantime = -1"),
                                     ("bantime = 1h", "bantime = 1d"), ("findtime = 10m", "findtime = 600"),
                                     ("maxretry = 5", "maxretry = 3")])
def test_other_spellings_of_compliant_values_pass(old, new):
    assert run_policy(FAIL2BAN, SERVER, server(jail=JAIL.replace(old, new))) == []


def test_sshd_jail_disabled_is_a_violation():
    messages = run_policy(FAIL2BAN, SERVER, server(jail=JAIL.replace("enabled = true\nbackend", "enabled = false\nbackend")))
    assert any("sshd jail is not enabled" in m for m in messages)


def test_jail_section_overrides_default_with_weaker_value_is_a_violation():
    messages = run_policy(FAIL2BAN, SERVER, server(jail=JAIL.replace("backend = systemd", "backend = systemd\nmaxretry = 20")))
    assert any("[sshd]" in m and "maxretry 20" in m for m in messages)


def test_later_jail_file_loosening_values_is_a_violation():
    later = file_entry("/etc/fail2ban/jail.d/99-override.local", "[DEFAULT]\nbantime = 10m\n")
    assert run_policy(FAIL2BAN, SERVER, server(files=later))


def test_earlier_conf_file_cannot_loosen_a_local_file():
    earlier = file_entry("/etc/fail2ban/jail.d/zz-late.conf", "[DEFAULT]\nbantime = 10m\n")
    assert run_policy(FAIL2BAN, SERVER, server(files=earlier)) == []


def test_jail_file_base64_encoded_is_read():
    encoded = base64.b64encode(JAIL.replace("maxretry = 5", "maxretry = 9").encode()).decode()
    entry = f"  - path: /etc/fail2ban/jail.d/50-more.local\n    encoding: b64\n    content: {encoded}\n"
    assert run_policy(FAIL2BAN, SERVER, server(files=entry))


def test_missing_odoo_jail_is_a_violation():
    jail = JAIL.split("[odoo]")[0]
    messages = run_policy(FAIL2BAN, SERVER, server(jail=jail))
    assert any("Odoo" in m for m in messages)


# --- INC-01: every jail's bans reach the incident channel ------------------------------

def _unreported(messages):
    return sorted(m.split("jail [")[1].split("]")[0] for m in messages if "incident channel (INC-01)" in m)


def test_policy_names_inc01_next_to_acc04():
    assert FAIL2BAN.framework.reference == "ACC-04,INC-01"


@pytest.mark.parametrize("jail,old", [
    ("sshd", "action = %(action_)s\n         odoo-hosting-alert\n"),
    ("odoo", "blocktype=drop]\n         odoo-hosting-alert"),
])
def test_jail_without_the_alert_action_is_a_violation(jail, old):
    new = "blocktype=drop]" if jail == "odoo" else ""
    messages = run_policy(FAIL2BAN, SERVER, server(jail=JAIL.replace(old, new)))
    assert _unreported(messages) == [jail], messages
    assert "odoo-hosting-notify --ban" in messages[0]


def test_alert_action_not_defined_in_the_cloud_config_is_a_violation():
    assert _unreported(run_policy(FAIL2BAN, SERVER, server(alert=None))) == ["odoo", "sshd"]


@pytest.mark.parametrize("old,new", [
    ("<notify> --ban", "<notify>"),  # every ban published on its own: no threshold
    ("notify = /usr/local/sbin/odoo-hosting-notify", "notify = /usr/bin/true"),
    ("actionban = ", "actioncheck = "),
])
def test_alert_action_that_does_not_count_bans_with_the_notifier_is_a_violation(old, new):
    assert _unreported(run_policy(FAIL2BAN, SERVER, server(alert=ALERT.replace(old, new)))) == ["odoo", "sshd"]


def test_alert_action_in_default_covers_every_jail_using_the_default_action():
    jail = JAIL.replace("action = %(action_)s\n         odoo-hosting-alert\n", "").replace(
        "[DEFAULT]\n", "[DEFAULT]\naction = %(action_)s\n         odoo-hosting-alert\n")
    assert run_policy(FAIL2BAN, SERVER, server(jail=jail)) == []


NO_NOTIFIER = ALERT.replace("notify = /usr/local/sbin/odoo-hosting-notify", "notify = /usr/bin/true")


def test_notifier_given_as_an_option_of_the_jails_action_entry_passes():
    jail = JAIL.replace("         odoo-hosting-alert\n\n[odoo]",
                        "         odoo-hosting-alert[notify=/opt/bin/odoo-hosting-notify]\n\n[odoo]")
    assert _unreported(run_policy(FAIL2BAN, SERVER, server(jail=jail, alert=NO_NOTIFIER))) == ["odoo"]


def test_notifier_given_in_a_local_override_of_the_action_passes():
    local = file_entry("/etc/fail2ban/action.d/odoo-hosting-alert.local",
                       "[Init]\nnotify = /opt/odoo-hosting/odoo-hosting-notify\n")
    assert run_policy(FAIL2BAN, SERVER, server(alert=NO_NOTIFIER, files=local)) == []


def test_invalid_alert_action_ini_is_not_judgeable():
    [message] = run_policy(FAIL2BAN, SERVER, server(alert="actionban = x\n[Definition\n"))
    assert "odoo-hosting-alert.conf is not a valid fail2ban INI file" in message


def test_fail2ban_not_installed_is_a_violation():
    props = server()
    props["userData"] = props["userData"].replace("packages: [fail2ban, ", "packages: [")
    [message] = run_policy(FAIL2BAN, SERVER, props)
    assert "fail2ban is not in packages" in message


def test_invalid_jail_ini_is_a_violation():
    assert run_policy(FAIL2BAN, SERVER, server(jail="maxretry = 5\n[sshd\n"))


def test_non_cloud_config_user_data_is_a_violation():
    props = good_server()
    props["userData"] = "#!/bin/sh\napt-get install -y fail2ban\n"
    [message] = run_policy(FAIL2BAN, SERVER, props)
    assert "cannot be checked" in message


def test_unknown_user_data_is_reported_instead_of_passing():
    props = good_server()
    props["userData"] = UNKNOWN
    for policy in (FAIL2BAN, UPGRADES):
        [message] = run_policy(policy, SERVER, props)
        assert "unknown at preview" in message and "cannot be checked" in message


def test_fail2ban_limits_come_from_policy_config():
    assert run_policy(FAIL2BAN, SERVER, server(), config={"fail2banMaxRetry": 3})


def test_bad_fail2ban_config_is_reported_naming_the_key():
    [message] = run_policy(FAIL2BAN, SERVER, server(), config={"fail2banMinBanTimeSeconds": "forever"})
    assert "fail2banMinBanTimeSeconds" in message


@pytest.mark.parametrize("text,seconds", [("600", 600), ("10m", 600), ("1h 30m", 5400), ("1 hour", 3600),
                                          ("-1", -1), ("2d", 172800), ("1w", 604800), ("soon", None)])
def test_fail2ban_time_syntax(text, seconds):
    assert hostsoftware.fail2ban_seconds(text) == seconds


# --- unattended-upgrades -------------------------------------------------------------

def test_no_apt_file_leaves_upgrades_off():
    messages = run_policy(UPGRADES, SERVER, server(apt=None))
    text = " ".join(messages)
    assert "Unattended-Upgrade" in text and "Automatic-Reboot" in text


@pytest.mark.parametrize("old,new,words", [
    ('APT::Periodic::Unattended-Upgrade "1";', 'APT::Periodic::Unattended-Upgrade "0";', "Unattended-Upgrade is '0'"),
    ('APT::Periodic::Update-Package-Lists "1";', "", "Update-Package-Lists"),
    ('Automatic-Reboot "true"', 'Automatic-Reboot "false"', "Automatic-Reboot is not"),
    ('Automatic-Reboot-Time "03:15"', 'Automatic-Reboot-Time "now"', "Automatic-Reboot-Time"),
    ("-security,label=Debian-Security", ",label=Debian", "security origin"),
])
def test_weak_unattended_upgrades_setting_is_a_violation(old, new, words):
    messages = run_policy(UPGRADES, SERVER, server(apt=APT.replace(old, new)))
    assert any(words in m for m in messages), messages


def test_nested_block_form_passes():
    apt = ('APT { Periodic { Update-Package-Lists "1"; Unattended-Upgrade "1"; }; };\n'
           'Unattended-Upgrade { Automatic-Reboot "true"; Automatic-Reboot-Time "02:00"; };\n')
    assert run_policy(UPGRADES, SERVER, server(apt=apt)) == []


def test_later_apt_file_turning_reboot_off_is_a_violation():
    later = file_entry("/etc/apt/apt.conf.d/99zz-local", 'Unattended-Upgrade::Automatic-Reboot "false";\n')
    assert run_policy(UPGRADES, SERVER, server(files=later))


def test_apt_file_with_ignored_extension_does_not_count():
    props = server(apt=None, files=file_entry("/etc/apt/apt.conf.d/52upgrades.txt", APT))
    assert run_policy(UPGRADES, SERVER, props)


def test_clearing_origins_without_adding_security_is_a_violation():
    later = file_entry("/etc/apt/apt.conf.d/99clear", "#clear Unattended-Upgrade::Origins-Pattern;\n")
    messages = run_policy(UPGRADES, SERVER, server(files=later))
    assert any("security origin" in m for m in messages)


def test_unattended_upgrades_not_installed_is_a_violation():
    props = server()
    props["userData"] = props["userData"].replace("unattended-upgrades, ", "")
    [message] = run_policy(UPGRADES, SERVER, props)
    assert "not in packages" in message


def test_invalid_apt_syntax_is_a_violation():
    assert run_policy(UPGRADES, SERVER, server(apt='Unattended-Upgrade::Automatic-Reboot "true"\n}'))
