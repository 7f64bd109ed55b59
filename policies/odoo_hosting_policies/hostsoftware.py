"""ACC-04 and INC-01 (fail2ban bans, reported to the incident channel) and SWU-01
(unattended security upgrades), judged on a server's cloud-config.

Like :mod:`.cloudconfig` for sshd, these compute the configuration the host
ends up with: Debian 12's packaged files (modelled below, pessimistic where
the image is not known) overlaid with the cloud-config's ``write_files`` (and
the host bundle's files, see :mod:`.hostbundle`), in the order the daemons
read them.

fail2ban reads ``jail.conf``, ``jail.d/*.conf``, ``jail.local``,
``jail.d/*.local`` into one INI configuration: a later file wins for the
same section and key, and a jail's own key beats ``[DEFAULT]``. An action
``NAME`` in a jail's action list is ``action.d/NAME.conf`` overlaid with
``action.d/NAME.local``; ``<tag>`` in its commands comes from the entry's
``NAME[tag=value]`` options, then its ``[Init]`` section.

APT reads ``/etc/apt/apt.conf.d/*`` in lexical order (names of letters,
digits, ``_-.``, no extension or ``.conf``), then ``/etc/apt/apt.conf``; a
later scalar wins, list items add up and ``#clear`` empties a list.
"""

from __future__ import annotations

import configparser
import posixpath
import re
from typing import Any

from pulumi_policy import Severity, StackValidationArgs

from ._meta import config_int, stack_policy
from .cloudconfig import NotJudgeable, packages_of, written_files
from .hostbundle import HostFileCheck

SERVER = "hcloud:index/server:Server"

# --- fail2ban ---------------------------------------------------------------------

F2B_DIR = "/etc/fail2ban"
# The parts of Debian 12's fail2ban 1.0.2 jail.conf and jail.d/defaults-debian.conf that matter here.
DEBIAN_JAIL_CONF = """\
[DEFAULT]
bantime = 10m
findtime = 10m
maxretry = 5
enabled = false
banaction = iptables-multiport
banaction_allports = iptables-allports
action = %(action_)s

[sshd]
port = ssh
"""
DEBIAN_JAIL_DEFAULTS = "[sshd]\nenabled = true\n"

INCIDENT_NOTIFIER = "odoo-hosting-notify"
"""What a jail's ban must run to reach the incident channel (INC-01): ``odoo-hosting-notify --ban``."""
_NOTIFIER_BAN = re.compile(rf"(?:^|[\s/]){re.escape(INCIDENT_NOTIFIER)}\s+--ban\s")
# One entry of a jail's action list: NAME or NAME[opt=value, ...] (fail2ban's OPTION_SPLIT_CRE, simplified).
_ACTION_ENTRY = re.compile(r"([^\s\[\]]+)(?:\s*\[((?:\"[^\"]*\"|'[^']*'|[^\]])*)\])?")
_ACTION_OPTION = re.compile(r"([\w.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^,]*))")
_TAG = re.compile(r"<([^ <>]+)>")

DEFAULT_MAX_RETRY = 5
DEFAULT_MIN_FIND_TIME = 600
DEFAULT_MIN_BAN_TIME = 3600

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "mi": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "mo": 2592000, "month": 2592000, "months": 2592000,
    "y": 31536000, "year": 31536000, "years": 31536000,
}
_TIME_PART = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_INTERP = re.compile(r"%\((\w+)\)s")


def fail2ban_seconds(text: str) -> float | None:
    """fail2ban's time syntax ("600", "10m", "1h 30m", "1 hour", "-1"); None when unreadable."""
    text = text.strip()
    if not text:
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        m = _TIME_PART.match(text, pos)
        if not m or m.end() == pos:
            return None
        unit = m.group(2).lower()
        if unit not in _UNITS and unit:
            return None
        total += float(m.group(1)) * _UNITS.get(unit, 1)
        pos = m.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
    return total


def _is_f2b_path(path: str) -> bool:
    return path.startswith(F2B_DIR + "/")


def _jail_file_order(files: dict[str, str]) -> list[str]:
    def in_dir(suffix: str) -> list[str]:
        return sorted(p for p in files if posixpath.dirname(p) == f"{F2B_DIR}/jail.d" and p.endswith(suffix))
    order = [f"{F2B_DIR}/jail.conf"] + in_dir(".conf") + [f"{F2B_DIR}/jail.local"] + in_dir(".local")
    return [p for p in order if p in files]


class _Jails:
    """The merged jail configuration."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="DEFAULT")
        self.parser.optionxform = str  # type: ignore[assignment]
        for path in _jail_file_order(files):
            try:
                self.parser.read_string(files[path], source=path)
            except configparser.Error as e:
                raise NotJudgeable(f"{path} is not a valid fail2ban INI file ({e.__class__.__name__})") from None

    def value(self, jail: str, key: str, depth: int = 0) -> str | None:
        if not self.parser.has_option(jail, key):
            return None
        raw = self.parser.get(jail, key)
        if depth > 10:
            return raw

        def resolve(m: re.Match[str]) -> str:
            inner = self.value(jail, m.group(1), depth + 1)
            return inner if inner is not None else m.group(0)

        return _INTERP.sub(resolve, raw)

    def enabled_jails(self) -> list[str]:
        return [s for s in self.parser.sections() if _truthy(self.value(s, "enabled"))]


def _truthy(value: str | None) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on")


def fail2ban_files(cfg: dict[str, Any]) -> dict[str, str]:
    base = {f"{F2B_DIR}/jail.conf": DEBIAN_JAIL_CONF, f"{F2B_DIR}/jail.d/defaults-debian.conf": DEBIAN_JAIL_DEFAULTS}
    return written_files(cfg, _is_f2b_path, base)


def _actionban(files: dict[str, str], name: str, options: dict[str, str]) -> str:
    """The ban command of action ``name`` (tags resolved), "" when the cloud-config does not define it."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    for path in (f"{F2B_DIR}/action.d/{name}.conf", f"{F2B_DIR}/action.d/{name}.local"):
        if path in files:
            try:
                parser.read_string(files[path], source=path)
            except configparser.Error as e:
                raise NotJudgeable(f"{path} is not a valid fail2ban INI file ({e.__class__.__name__})") from None
    if not parser.has_option("Definition", "actionban"):
        return ""
    tags = {**(dict(parser.items("Init")) if parser.has_section("Init") else {}), **options}
    command = parser.get("Definition", "actionban")
    for _ in range(10):  # tags may name tags
        command = _TAG.sub(lambda m: tags.get(m.group(1), m.group(0)), command)
    return command


def _reports_bans(files: dict[str, str], action: str) -> bool:
    """Whether one of the actions in a jail's action list runs the incident notifier on a ban."""
    for m in _ACTION_ENTRY.finditer(action):
        options = {o.group(1): next(v for v in o.group(2, 3, 4) if v is not None).strip()
                   for o in _ACTION_OPTION.finditer(m.group(2) or "")}
        if _NOTIFIER_BAN.search(_actionban(files, m.group(1), options)):
            return True
    return False


def _jail_findings(jails: _Jails, jail: str, max_retry: int, min_find: int, min_ban: int) -> list[str]:
    findings = []
    retry = jails.value(jail, "maxretry")
    try:
        if retry is None or int(retry.strip()) > max_retry:
            findings.append(f"jail [{jail}] has maxretry {retry}; set maxretry to at most {max_retry}")
    except ValueError:
        findings.append(f"jail [{jail}] has a maxretry '{retry}' that cannot be read; set a number <= {max_retry}")
    find = jails.value(jail, "findtime")
    find_s = fail2ban_seconds(find) if find is not None else None
    if find_s is None or find_s < min_find:
        findings.append(f"jail [{jail}] has findtime {find}; set findtime to at least {min_find // 60}m")
    ban = jails.value(jail, "bantime")
    ban_s = fail2ban_seconds(ban) if ban is not None else None
    if ban_s is None or (0 <= ban_s < min_ban):
        findings.append(f"jail [{jail}] has bantime {ban}; set bantime to at least {min_ban // 3600}h (or -1)")
    action = jails.value(jail, "action") or ""
    banaction = jails.value(jail, "banaction") or ""
    uses_default = "action_" in (jails.parser.get(jail, "action") if jails.parser.has_option(jail, "action") else "")
    effective = banaction if uses_default or not action.strip() else action
    if "nftables" not in effective:
        findings.append(f"jail [{jail}] bans through '{effective.strip() or '(nothing)'}', not nftables; set "
                        "banaction = nftables-multiport (and banaction_allports = nftables-allports)")
    if not _reports_bans(jails.files, action):
        findings.append(f"jail [{jail}] does not report its bans to the incident channel (INC-01); add to its "
                        f"action list an action from /etc/fail2ban/action.d/ whose actionban runs "
                        f"{INCIDENT_NOTIFIER} --ban")
    return findings


def fail2ban_findings(cfg: dict[str, Any], max_retry: int = DEFAULT_MAX_RETRY,
                      min_find: int = DEFAULT_MIN_FIND_TIME, min_ban: int = DEFAULT_MIN_BAN_TIME) -> list[str]:
    """ACC-04/INC-01 findings for one (effective) cloud-config; :class:`NotJudgeable` when unreadable."""
    findings: list[str] = []
    if "fail2ban" not in packages_of(cfg):
        findings.append("fail2ban is not in packages; add it to the cloud-config's packages")
    jails = _Jails(fail2ban_files(cfg))
    enabled = jails.enabled_jails()
    if "sshd" not in enabled:
        findings.append("the sshd jail is not enabled; set enabled = true in [sshd]")
    if not any("odoo" in j.lower() or "odoo" in (jails.value(j, "filter") or "").lower() for j in enabled):
        findings.append("no enabled jail watches Odoo's failed logins; add an [odoo] jail with a filter "
                        "matching 'Login failed' lines")
    for jail in enabled:
        findings.extend(_jail_findings(jails, jail, max_retry, min_find, min_ban))
    return findings


_F2B_CONFIG = {
    "fail2banMaxRetry": {
        "type": "integer", "minimum": 1, "default": DEFAULT_MAX_RETRY,
        "description": "Most failures a fail2ban jail may allow before banning (ACC-04: 5).",
    },
    "fail2banMinFindTimeSeconds": {
        "type": "integer", "minimum": 1, "default": DEFAULT_MIN_FIND_TIME,
        "description": "Shortest fail2ban findtime accepted, in seconds (ACC-04: 10 minutes).",
    },
    "fail2banMinBanTimeSeconds": {
        "type": "integer", "minimum": 1, "default": DEFAULT_MIN_BAN_TIME,
        "description": "Shortest fail2ban bantime accepted, in seconds (ACC-04: 1 hour).",
    },
}


def _fail2ban_limits(args: StackValidationArgs) -> tuple[int, int, int]:
    return (config_int(args, "fail2banMaxRetry", DEFAULT_MAX_RETRY, minimum=1),
            config_int(args, "fail2banMinFindTimeSeconds", DEFAULT_MIN_FIND_TIME, minimum=1),
            config_int(args, "fail2banMinBanTimeSeconds", DEFAULT_MIN_BAN_TIME, minimum=1))


FAIL2BAN = HostFileCheck(
    judge=fail2ban_findings,
    params=_fail2ban_limits,
    what="fail2ban's configuration",
    no_user_data="the server has no userData, so fail2ban is not set up; pass a #cloud-config that configures it.",
    unreadable="fail2ban's configuration cannot be checked. Pass a #cloud-config (or host bundle) that writes "
               "the jails to /etc/fail2ban/jail.d/.",
    finding="{source} leaves fail2ban too weak: {finding} (in /etc/fail2ban/jail.d/*.local).",
)


hcloud_server_fail2ban = stack_policy(
    name="hcloud-server-fail2ban-jails",
    description="Checks that a Hetzner server's cloud-config (with the host bundle it pins) installs fail2ban "
                "with enabled sshd and Odoo jails that ban after at most 5 failures within at least 10 "
                "minutes, for at least 1 hour, through nftables, and that every enabled jail also reports its "
                "bans to the incident channel "
                "(an action running odoo-hosting-notify --ban; Debian 12 defaults applied first).",
    controls=["ACC-04", "INC-01"],
    severity=Severity.HIGH,
    remediation="Install fail2ban and write /etc/fail2ban/jail.d/00-<name>.local with [DEFAULT] maxretry = 5, "
                "findtime = 10m, bantime = 1h, banaction = nftables-multiport, and enabled [sshd] and "
                "[odoo] jails whose action lists add an action (in /etc/fail2ban/action.d/) running "
                "odoo-hosting-notify --ban <name> <ip> in the background.",
    validate=FAIL2BAN.validate,
    applies_to=(SERVER,),
    config=_F2B_CONFIG,
    scope="client",
)


# --- unattended-upgrades ------------------------------------------------------------

APT_CONF_DIR = "/etc/apt/apt.conf.d"
APT_MAIN = "/etc/apt/apt.conf"
# What Debian 12's unattended-upgrades package installs (50unattended-upgrades, values that matter).
# 20auto-upgrades is assumed absent: it exists only when debconf enabled automatic updates.
DEBIAN_UNATTENDED_UPGRADES = """\
Unattended-Upgrade::Origins-Pattern {
        "origin=Debian,codename=${distro_codename},label=Debian";
        "origin=Debian,codename=${distro_codename},label=Debian-Security";
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
};
"""
_APT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_APT_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([{};])|(#clear\b)|([^\s{};"]+)')
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")


def _is_apt_path(path: str) -> bool:
    if path == APT_MAIN:
        return True
    if posixpath.dirname(path) != APT_CONF_DIR:
        return False
    base = posixpath.basename(path)
    return bool(_APT_NAME.match(base)) and ("." not in base or base.endswith(".conf"))


class AptConfig:
    """Scalars and lists of the merged APT configuration (keys lower-cased, as APT compares them)."""

    def __init__(self) -> None:
        self.scalars: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}

    def read(self, text: str, source: str) -> None:
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        lines = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("//") or (stripped.startswith("#") and not stripped.startswith("#clear")):
                continue
            lines.append(re.sub(r'\s//[^"]*$', "", line))
        tokens = [m for m in _APT_TOKEN.finditer("\n".join(lines))]
        scope: list[str] = []
        i = 0

        def fail() -> None:
            raise NotJudgeable(f"{source} is not valid APT configuration syntax")

        while i < len(tokens):
            string, punct, clear, word = tokens[i].groups()
            if clear:
                if i + 2 >= len(tokens) or tokens[i + 1].group(4) is None:
                    fail()
                key = "::".join(scope + [tokens[i + 1].group(4)]).lower().rstrip(":")
                for table in (self.scalars, self.lists):
                    for k in [k for k in table if k == key or k.startswith(key + "::")]:
                        del table[k]
                i += 3 if tokens[i + 2].group(2) == ";" else 2
            elif word is not None:
                key = "::".join(scope + [word]).lower()
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if nxt is not None and nxt.group(1) is not None:
                    value = nxt.group(1)
                    if key.endswith("::"):
                        self.lists.setdefault(key.rstrip(":"), []).append(value)
                    else:
                        self.scalars[key] = value
                    i += 2
                    if i < len(tokens) and tokens[i].group(2) == "{":
                        scope.append(word)
                        i += 1
                    elif i < len(tokens) and tokens[i].group(2) == ";":
                        i += 1
                    else:
                        fail()
                elif nxt is not None and nxt.group(2) == "{":
                    scope.append(word)
                    i += 2
                else:
                    fail()
            elif string is not None:  # a list item inside a block
                if not scope:
                    fail()
                self.lists.setdefault("::".join(scope).lower(), []).append(string)
                i += 1
                if i < len(tokens) and tokens[i].group(2) == ";":
                    i += 1
            elif punct == "}":
                if not scope:
                    fail()
                scope.pop()
                i += 1
                if i < len(tokens) and tokens[i].group(2) == ";":
                    i += 1
            elif punct == ";":
                i += 1
            else:
                fail()
        if scope:
            fail()


def apt_config(cfg: dict[str, Any]) -> AptConfig:
    files = written_files(cfg, _is_apt_path, {f"{APT_CONF_DIR}/50unattended-upgrades": DEBIAN_UNATTENDED_UPGRADES})
    order = sorted(p for p in files if p != APT_MAIN) + ([APT_MAIN] if APT_MAIN in files else [])
    merged = AptConfig()
    for path in order:
        merged.read(files[path], path)
    return merged


def _apt_true(value: str | None) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on")


def unattended_upgrades_findings(cfg: dict[str, Any]) -> list[str]:
    """SWU-01 findings for one (effective) cloud-config; :class:`NotJudgeable` when unreadable."""
    findings: list[str] = []
    if "unattended-upgrades" not in packages_of(cfg):
        findings.append("unattended-upgrades is not in packages; add it to the cloud-config's packages")
    apt = apt_config(cfg)
    for key in ("APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"):
        value = apt.scalars.get(key.lower())
        if not isinstance(value, str) or value.strip() != "1":
            findings.append(f'{key} is {value!r}, not "1" (daily); set {key} "1";')
    patterns = apt.lists.get("unattended-upgrade::origins-pattern", [])
    origins = apt.lists.get("unattended-upgrade::allowed-origins", [])
    if not any("security" in p.lower() for p in patterns + origins):
        findings.append("no Unattended-Upgrade::Origins-Pattern names a security origin; add "
                        '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security"')
    if not _apt_true(apt.scalars.get("unattended-upgrade::automatic-reboot")):
        findings.append('Unattended-Upgrade::Automatic-Reboot is not "true", so security fixes that need a '
                        'reboot never take effect; set it to "true"')
    reboot_time = apt.scalars.get("unattended-upgrade::automatic-reboot-time")
    if not isinstance(reboot_time, str) or not _HHMM.match(reboot_time.strip()):
        findings.append(f"Unattended-Upgrade::Automatic-Reboot-Time is {reboot_time!r}, so the reboot happens "
                        'right after the upgrade, not in the maintenance window; set it to "HH:MM"')
    return findings


UNATTENDED = HostFileCheck(
    judge=unattended_upgrades_findings,
    what="unattended-upgrades",
    no_user_data="the server has no userData, so unattended-upgrades is not set up; pass a #cloud-config that "
                 "configures it.",
    unreadable="unattended-upgrades cannot be checked. Pass a #cloud-config (or host bundle) that writes its "
               "settings to /etc/apt/apt.conf.d/.",
    finding="{source} leaves automatic security updates off or incomplete: {finding}.",
)


hcloud_server_unattended_upgrades = stack_policy(
    name="hcloud-server-unattended-upgrades",
    description="Checks that a Hetzner server's cloud-config (with the host bundle it pins) installs "
                "unattended-upgrades, runs it daily for the Debian security origins, and reboots "
                "automatically at a set time (Debian 12 defaults applied first).",
    controls=["SWU-01"],
    severity=Severity.HIGH,
    remediation='Install unattended-upgrades and write /etc/apt/apt.conf.d/52<name> with APT::Periodic::'
                'Update-Package-Lists "1"; APT::Periodic::Unattended-Upgrade "1"; a security Origins-Pattern; '
                'Unattended-Upgrade::Automatic-Reboot "true"; and Automatic-Reboot-Time "HH:MM".',
    validate=UNATTENDED.validate,
    applies_to=(SERVER,),
    scope="client",
)
