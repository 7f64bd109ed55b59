"""BKP-01, BKP-02, BKP-03 and INC-01 on the host: judge the backup agent a server's cloud-config sets up.

Pure functions over the effective cloud-config (user-data with the host
bundle it pins, see :mod:`.hostbundle`), like the other host checks. What a
conforming cloud-config must contain:

* a systemd ``.timer`` (written by ``write_files`` and enabled in ``runcmd``
  or through ``WantedBy=timers.target``) that fires at least daily and
  starts a service running a backup (``restic backup``, directly or in a
  script the cloud-config writes);
* a timer that fires at least weekly and starts a repository check
  (``restic check``): a service whose command runs ``check``;
* ``OnFailure=`` on those services, so a failure reaches the incident
  channel (INC-01);
* no restic password at rest: no ``RESTIC_PASSWORD=<value>``, no
  ``--password-file``/``RESTIC_PASSWORD_FILE`` (use ``RESTIC_PASSWORD_COMMAND``
  fetching it from Vault at run time);
* an S3 repository on AWS names an EU regional endpoint.

Calendar expressions are read for their period: ``daily``/``*-*-* HH:MM``
(1 day), ``weekly`` or a weekday list (7 days / number of weekdays),
``hourly``, ``monthly``; ``OnUnitActiveSec=`` too. Anything else is
reported as not judgeable rather than passed.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import Severity

from ._meta import stack_policy
from .cloudconfig import written_files
from .hostbundle import HostFileCheck

SERVER = "hcloud:index/server:Server"
SYSTEMD_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
DAY = 86400
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_SPANS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hr": 3600, "d": DAY, "day": DAY, "days": DAY,
          "w": 7 * DAY, "week": 7 * DAY, "weeks": 7 * DAY}
_SPAN_PART = re.compile(r"(\d+)\s*([a-z]*)")
_CALENDAR_KEYWORDS = {"minutely": 60, "hourly": 3600, "daily": DAY, "weekly": 7 * DAY, "monthly": 28 * DAY}
_DATE_EVERY_DAY = re.compile(r"^(\*|\*-\*)-\*$|^\*-\*-\*$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
# Starts with a literal, so the regex engine skips ahead to "R" or "-"; the
# word start (line start, blank, ";" or a quote) is checked afterwards, in
# _password_at_rest: a leading (^|[...]) group made every position a candidate
# and this search, over every file the host gets, 3x slower.
_PASSWORD_SETTING = re.compile(r"RESTIC_PASSWORD\s*=\s*[^\s$'\"]|RESTIC_PASSWORD_FILE\s*=|--password-file\b")
_S3_AWS = re.compile(r"s3:(?:https?://)?s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com/", re.IGNORECASE)


def _wanted(path: str) -> bool:
    return True


def _unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        if current is not None and "=" in line:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def span_seconds(text: str) -> int | None:
    """systemd time span ("1d", "24h", "7d 12h", "86400"); None when unreadable."""
    total, pos, text = 0, 0, text.strip().lower()
    if not text:
        return None
    for m in _SPAN_PART.finditer(text):
        if text[pos:m.start()].strip():
            return None
        unit = m.group(2) or "s"
        if unit not in _SPANS:
            return None
        total += int(m.group(1)) * _SPANS[unit]
        pos = m.end()
    return total if not text[pos:].strip() and total > 0 else None


def calendar_period(expression: str) -> int | None:
    """The longest gap (seconds) between two firings of an OnCalendar expression, for the
    common forms; None when the expression is not understood."""
    text = expression.strip().lower()
    if text in _CALENDAR_KEYWORDS:
        return _CALENDAR_KEYWORDS[text]
    parts = text.split()
    if parts and parts[-1] in ("utc",) or (parts and "/" in parts[-1]):
        parts = parts[:-1]
    chosen = set(range(7))
    if parts and re.match(r"^[a-z]{3}", parts[0]):
        chosen = set()
        for item in parts[0].split(","):
            ends = item.split("..")
            if not all(e[:3] in WEEKDAYS for e in ends) or len(ends) > 2:
                return None
            a, b = WEEKDAYS.index(ends[0][:3]), WEEKDAYS.index(ends[-1][:3])
            chosen |= {i % 7 for i in range(a, (b if b >= a else b + 7) + 1)}
        parts = parts[1:]
    every_day_at_a_time = ((len(parts) == 2 and _DATE_EVERY_DAY.match(parts[0]) and _TIME.match(parts[1]))
                           or (len(parts) == 1 and _TIME.match(parts[0])))
    if not every_day_at_a_time or not chosen:
        return None
    days = sorted(chosen)
    # The longest gap between two chosen weekdays, around the week.
    gaps = [(days[(i + 1) % len(days)] - d) % 7 or 7 for i, d in enumerate(days)]
    return max(gaps) * DAY


@dataclass
class _Timer:
    name: str
    period: int | None
    service: str
    enabled: bool
    problems: list[str] = field(default_factory=list)


def _systemd_units(files: dict[str, str]) -> dict[str, str]:
    return {posixpath.basename(p): text for p, text in files.items()
            if posixpath.dirname(p) in SYSTEMD_DIRS and p.endswith((".timer", ".service"))}


def _runcmd_text(cfg: dict[str, Any]) -> str:
    out = []
    for item in cfg.get("runcmd") or []:
        out.append(" ".join(map(str, item)) if isinstance(item, list) else str(item))
    return "\n".join(out)


def _service_commands(service_text: str) -> list[list[str]]:
    commands = []
    for value in _unit_sections(service_text).get("Service", {}).get("ExecStart", []):
        try:
            argv = shlex.split(value.lstrip("-@:+!"))
        except ValueError:
            argv = value.split()
        if argv:
            commands.append(argv)
    return commands


def _runs(argv: list[str], files: dict[str, str], verb: str) -> bool:
    """Whether the command runs ``restic <verb>``, itself or through a script the cloud-config writes."""
    line = " ".join(argv)
    if re.search(rf"\brestic\b.*\b{verb}\b", line):
        return True
    script = files.get(argv[0])
    if script is None or not re.search(rf"\brestic\s+(--?\S+\s+)*{verb}\b", script):
        return False
    # A multi-command script: the verb is chosen by its argument (``run``/``backup`` vs ``check``).
    args = [a.lower() for a in argv[1:]]
    if verb == "check":
        return "check" in args or not args
    return "check" not in args


def _password_at_rest(text: str) -> bool:
    """Whether a word of ``text`` sets the restic password from the host (a variable, a file, a flag)."""
    m = _PASSWORD_SETTING.search(text)
    while m is not None:
        start = m.start()
        if start == 0 or text[start - 1].isspace() or text[start - 1] in ";'\"":
            return True
        m = _PASSWORD_SETTING.search(text, start + 1)  # every start, as the one-regex form tried
    return False


def backup_agent_findings(cfg: dict[str, Any]) -> list[str]:
    """Findings for the backup agent one (effective) cloud-config sets up; :class:`NotJudgeable`
    when it cannot be read."""
    files = written_files(cfg, _wanted)
    units = _systemd_units(files)
    runcmd = _runcmd_text(cfg)
    timers: list[_Timer] = []
    unreadable: list[str] = []
    for name, body in units.items():
        if not name.endswith(".timer"):
            continue
        sections = _unit_sections(body)
        timer = sections.get("Timer", {})
        periods = [calendar_period(v) for v in timer.get("OnCalendar", [])]
        periods += [span_seconds(v) for v in timer.get("OnUnitActiveSec", [])]
        if any(p is None for p in periods):
            unreadable.append(name)
        known = [p for p in periods if p]
        service = (timer.get("Unit") or [name[:-len(".timer")] + ".service"])[-1]
        enabled = bool(re.search(rf"systemctl\s+enable\b[^\n]*\b{re.escape(name)}", runcmd))
        timers.append(_Timer(name=name, period=min(known) if known else None, service=service, enabled=enabled))

    findings: list[str] = []
    for verb, limit, what in (("backup", DAY, "a daily backup"), ("check", 7 * DAY, "a weekly repository check")):
        candidates = [t for t in timers if t.service in units
                      and any(_runs(argv, files, verb) for argv in _service_commands(units[t.service]))]
        good = [t for t in candidates if t.period is not None and t.period <= limit and t.enabled]
        if good:
            for t in good:
                if not _unit_sections(units[t.service]).get("Unit", {}).get("OnFailure"):
                    findings.append(f"{t.service} has no OnFailure= hook, so a failed run notifies nobody "
                                    "(INC-01); add OnFailure= starting a unit that reports to the incident channel")
            continue
        if not candidates:
            findings.append(f"no systemd timer starts {what} (restic {verb}); write a .timer and its .service "
                            "and enable the timer in runcmd")
        for t in candidates:
            if t.period is None:
                findings.append(f"{t.name} has no schedule this check can read (OnCalendar/OnUnitActiveSec)")
            elif t.period > limit:
                findings.append(f"{t.name} runs restic {verb} only every {t.period // DAY} day(s); schedule "
                                f"{what} (at most every {limit // DAY} day(s))")
            if not t.enabled:
                findings.append(f"{t.name} is not enabled; add `systemctl enable --now {t.name}` to runcmd")
    everything = "\n".join(files.values()) + "\n" + runcmd
    if _password_at_rest(everything):
        findings.append("the restic password is stored on the host (RESTIC_PASSWORD=..., RESTIC_PASSWORD_FILE or "
                        "--password-file); use RESTIC_PASSWORD_COMMAND fetching it from Vault at run time (BKP-03)")
    for m in _S3_AWS.finditer(everything):
        region = (m.group(1) or "us-east-1").lower()
        if not region.startswith("eu-"):
            findings.append(f"the restic repository is in AWS region {region}, not in the EU; use "
                            "s3:https://s3.<eu-region>.amazonaws.com/<bucket> (BKP-02)")
    if unreadable:
        findings.append(f"the schedule of {', '.join(sorted(unreadable))} cannot be read by this check; use "
                        "OnCalendar=daily, '*-*-* HH:MM', a weekday list or OnUnitActiveSec=")
    return findings


BACKUP_AGENT = HostFileCheck(
    judge=backup_agent_findings,
    what="the backup agent",
    no_user_data="the server has no userData, so no backup agent is set up; pass a #cloud-config "
                 "with a daily restic backup timer and a weekly check.",
    unreadable="the backup agent cannot be checked.",
    finding="{source}: {finding}.",
)


hcloud_server_backup_agent = stack_policy(
    name="hcloud-server-backup-agent",
    description="Checks that a Hetzner server's cloud-config (with the host bundle it pins) runs a daily "
                "restic backup and a weekly repository check from enabled systemd timers with an OnFailure "
                "hook, keeps no restic password on the host, and names an EU S3 endpoint.",
    controls=["BKP-01", "BKP-02", "BKP-03", "INC-01"],
    severity=Severity.HIGH,
    remediation="Render the backup agent of components/hostconfig/backup.py (or equal): a .timer with "
                "OnCalendar=*-*-* HH:MM:00 UTC starting `restic backup`, a weekly timer starting "
                "`restic check`, OnFailure= on both services, RESTIC_PASSWORD_COMMAND reading Vault, "
                "and a repository at s3:https://s3.eu-*.amazonaws.com/<bucket>.",
    validate=BACKUP_AGENT.validate,
    applies_to=(SERVER,),
    scope="client",
)
