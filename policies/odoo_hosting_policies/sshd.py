"""The effective sshd configuration, computed the way OpenSSH's sshd does it.

Pure functions over plain text: no Pulumi here, so every rule is tested
directly. What sshd does and we copy:

- keywords are case-insensitive; ``Keyword value`` and ``Keyword=value``;
  a token starting with ``#`` ends the line;
- ``Include`` expands a glob (relative paths are relative to /etc/ssh) and
  reads the matches in lexical order, in place;
- for each keyword the FIRST value obtained wins;
- ``Match`` starts a conditional block that lasts until the next ``Match``
  or the end of the file it is in; its settings override the global ones for
  the connections it matches, so any loosening inside one counts.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_CONFIG_DIR = "/etc/ssh/sshd_config.d"
CLOUD_INIT_DROP_IN = SSHD_CONFIG_DIR + "/50-cloud-init.conf"

# Debian 12's stock /etc/ssh/sshd_config, reduced to the lines that matter
# here (the rest are comments or do not touch authentication).
DEBIAN_SSHD_CONFIG = """\
Include /etc/ssh/sshd_config.d/*.conf
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""

# sshd treats these pairs as one keyword (the first is the canonical name).
_ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
}

# Compiled-in defaults of OpenSSH 9.2 (Debian 12) for the keywords judged here.
SSHD_DEFAULTS = {
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "permitrootlogin": "prohibit-password",
    "authenticationmethods": "any",
    "maxauthtries": "6",
}

_MAX_INCLUDE_DEPTH = 16


def canonical_keyword(keyword: str) -> str:
    k = keyword.lower()
    return _ALIASES.get(k, k)


@dataclass(frozen=True)
class Directive:
    keyword: str  # canonical, lower case
    value: str  # arguments joined by one space, as written
    source: str  # file it came from
    match: str | None  # the Match criteria it is under, None when global


@dataclass
class EffectiveSshd:
    """Global values (first wins) and every directive found inside Match blocks."""

    values: dict[str, Directive] = field(default_factory=dict)
    match_directives: list[Directive] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def get(self, keyword: str) -> str | None:
        d = self.values.get(canonical_keyword(keyword))
        if d is not None:
            return d.value
        return SSHD_DEFAULTS.get(canonical_keyword(keyword))

    def origin(self, keyword: str) -> str:
        d = self.values.get(canonical_keyword(keyword))
        return d.source if d is not None else "sshd's built-in default"


_LINE_RE = re.compile(r"^\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+|$)(.*)$")


def _split_line(line: str) -> tuple[str, list[str]] | None:
    """Keyword and arguments of one line, like sshd's strdelim/argv_split."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    m = _LINE_RE.match(stripped)
    if m is None:
        return ("<unparsable>", [stripped])
    head, args_text = m.group(1), m.group(2)
    try:
        lexer = shlex.shlex(args_text, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        args = list(lexer)
    except ValueError:
        args = args_text.split()
    return head, args


def _glob_files(pattern: str, files: Mapping[str, str]) -> list[str]:
    if not pattern.startswith("/"):
        pattern = posixpath.join("/etc/ssh", pattern)
    pattern = posixpath.normpath(pattern)
    pat_parts = pattern.split("/")
    hits = []
    for path in files:
        parts = path.split("/")
        if len(parts) != len(pat_parts):
            continue
        ok = True
        for p, pp in zip(parts, pat_parts, strict=True):
            # glob(3): a wildcard does not match a leading dot.
            if p.startswith(".") and not pp.startswith("."):
                ok = False
                break
            if not fnmatch.fnmatchcase(p, pp):
                ok = False
                break
        if ok:
            hits.append(path)
    return sorted(hits)


def effective_sshd(files: Mapping[str, str], main: str = SSHD_CONFIG) -> EffectiveSshd:
    """Reads ``main`` from ``files`` (path -> text) the way sshd would."""

    result = EffectiveSshd()

    def read(path: str, match: str | None, depth: int) -> None:
        if depth > _MAX_INCLUDE_DEPTH:
            result.problems.append(f"Include nesting deeper than {_MAX_INCLUDE_DEPTH} in {path}")
            return
        text = files.get(path)
        if text is None:
            return
        current_match = match
        for raw in text.splitlines():
            split = _split_line(raw)
            if split is None:
                continue
            head, args = split
            keyword = canonical_keyword(head)
            if keyword == "match":
                criteria = " ".join(args)
                current_match = criteria if match is None else f"{match} / {criteria}"
                continue
            if keyword == "include":
                for pattern in args:
                    for included in _glob_files(pattern, files):
                        read(included, current_match, depth + 1)
                continue
            directive = Directive(keyword, " ".join(args), path, current_match)
            if current_match is None:
                result.values.setdefault(keyword, directive)
            else:
                result.match_directives.append(directive)

    read(main, None, 0)
    return result


# --- judging -----------------------------------------------------------------

_WEAK_SUBSTRINGS = ("cbc", "3des", "arcfour", "blowfish", "cast128", "rijndael")
_WEAK_PREFIXES = ("hmac-md5", "hmac-sha1", "umac-64", "hmac-ripemd160")
_WEAK_EXACT = (
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "ssh-rsa",
    "ssh-dss",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
)
# Names a wildcard in a "+" or "^" list is tested against.
_KNOWN_WEAK_NAMES = (
    "aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc", "cast128-cbc",
    "arcfour", "arcfour128", "arcfour256", "rijndael-cbc@lysator.liu.se",
    "hmac-md5", "hmac-md5-96", "hmac-md5-etm@openssh.com", "hmac-sha1", "hmac-sha1-96",
    "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "umac-64-etm@openssh.com",
) + _WEAK_EXACT

ALGORITHM_KEYWORDS = (
    "ciphers",
    "kexalgorithms",
    "macs",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "hostbasedacceptedalgorithms",
    "casignaturealgorithms",
)

_DISPLAY = {
    "passwordauthentication": "PasswordAuthentication",
    "kbdinteractiveauthentication": "KbdInteractiveAuthentication",
    "permitrootlogin": "PermitRootLogin",
    "authenticationmethods": "AuthenticationMethods",
    "maxauthtries": "MaxAuthTries",
    "ciphers": "Ciphers",
    "kexalgorithms": "KexAlgorithms",
    "macs": "MACs",
    "hostkeyalgorithms": "HostKeyAlgorithms",
    "pubkeyacceptedalgorithms": "PubkeyAcceptedAlgorithms",
    "hostbasedacceptedalgorithms": "HostbasedAcceptedAlgorithms",
    "casignaturealgorithms": "CASignatureAlgorithms",
}

MAX_AUTH_TRIES = 3


def display(keyword: str) -> str:
    return _DISPLAY.get(keyword, keyword)


def is_weak_algorithm(name: str) -> bool:
    n = name.lower()
    if any(ch in n for ch in "*?"):
        return any(fnmatch.fnmatchcase(w, n) for w in _KNOWN_WEAK_NAMES)
    return n in _WEAK_EXACT or n.startswith(_WEAK_PREFIXES) or any(s in n for s in _WEAK_SUBSTRINGS)


def weak_algorithms(value: str) -> list[str]:
    """Weak names that ``value`` adds; a "-" list only removes, so it is never weak."""
    v = value.strip()
    if v.startswith("-"):
        return []
    if v[:1] in ("+", "^"):
        v = v[1:]
    return [a for a in v.split(",") if a and is_weak_algorithm(a)]


def _methods_require_key(value: str) -> bool:
    alternatives = value.split()
    if not alternatives:
        return False
    return all("publickey" in [m.split(":", 1)[0].lower() for m in alt.split(",")] for alt in alternatives)


def _loosening(keyword: str, value: str) -> str | None:
    v = value.strip().lower()
    if keyword == "passwordauthentication" and v != "no":
        return "PasswordAuthentication must be no"
    if keyword == "kbdinteractiveauthentication" and v != "no":
        return "KbdInteractiveAuthentication (alias ChallengeResponseAuthentication) must be no"
    if keyword == "permitrootlogin" and v != "no":
        return "PermitRootLogin must be no"
    if keyword == "authenticationmethods" and not _methods_require_key(value):
        return "AuthenticationMethods must be publickey (every method list must require a key)"
    if keyword == "maxauthtries":
        try:
            if int(v) > MAX_AUTH_TRIES:
                return f"MaxAuthTries must be at most {MAX_AUTH_TRIES}"
        except ValueError:
            return f"MaxAuthTries must be a number at most {MAX_AUTH_TRIES}"
    if keyword in ALGORITHM_KEYWORDS:
        weak = weak_algorithms(value)
        if weak:
            return f"{display(keyword)} must not enable weak algorithms ({', '.join(weak)})"
    return None


_REQUIRED = ("passwordauthentication", "kbdinteractiveauthentication", "permitrootlogin",
             "authenticationmethods", "maxauthtries")


def judge(effective: EffectiveSshd) -> list[str]:
    """Findings against ACC-01; an empty list means key-only SSH."""
    findings: list[str] = list(effective.problems)
    for keyword in _REQUIRED + ALGORITHM_KEYWORDS:
        value = effective.get(keyword)
        if value is None:
            continue  # algorithm lists left at the (modern) defaults
        why = _loosening(keyword, value)
        if why:
            findings.append(
                f"effective {display(keyword)} is '{value}' (from {effective.origin(keyword)}): {why}")
    for d in effective.match_directives:
        why = _loosening(d.keyword, d.value)
        if why:
            findings.append(
                f"'{display(d.keyword)} {d.value}' inside 'Match {d.match}' (in {d.source}) loosens "
                f"authentication for the matching connections: {why}")
    return findings


def judge_files(files: Mapping[str, str]) -> list[str]:
    return judge(effective_sshd(files))
