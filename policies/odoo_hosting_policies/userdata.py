"""SEC-01 (baseline): no plaintext password in a server's user-data.

User-data is readable by anyone with read access to the project (Hetzner
console and API, EC2 DescribeInstanceAttribute) and by every process on the
host through the metadata service, so a password in it is a password in
plaintext. Judged on hcloud servers and EC2 instances/launch templates:

- cloud-config ``chpasswd.users[].password`` and ``chpasswd.list`` entries
  (``user:password``) that are not a crypt hash (``$...``) or ``RANDOM``;
- the top-level ``password``;
- ``users[].plain_text_passwd``;
- any command (bootcmd, runcmd, or a shell-script user-data) that pipes
  ``user:password`` into ``chpasswd`` or a password into ``passwd --stdin``.

Messages name the user or the place, never the value.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import as_list, cannot_check, get, resource_policy
from .cloudconfig import commands, judge_text

SERVER = "hcloud:index/server:Server"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"

_GENERATED = frozenset({"random", "r"})
_CHPASSWD_PIPE = re.compile(r"[\w.-]+:[^\s|'\"]+['\"]?\s*\|\s*(sudo\s+)?chpasswd\b|--stdin\b.*\bpasswd\b|"
                            r"\bpasswd\b.*--stdin\b|\bchpasswd\b\s*<<")


def _is_plaintext(password: Any, kind: Any = None) -> bool:
    if not isinstance(password, str) or not password:
        return False
    if password.strip().lower() in _GENERATED or str(kind or "").strip().upper() == "RANDOM":
        return False
    if str(kind or "").strip().lower() == "text":
        return True
    return not password.startswith("$")


def cloud_config_password_problems(cfg: Mapping[str, Any]) -> list[str]:
    problems = []
    chpasswd = cfg.get("chpasswd")
    if isinstance(chpasswd, Mapping):
        for entry in as_list(chpasswd.get("users")):
            if isinstance(entry, Mapping) and _is_plaintext(entry.get("password"), entry.get("type")):
                problems.append(f"chpasswd sets user '{entry.get('name', '?')}' a plaintext password")
        raw = chpasswd.get("list")
        lines = raw.splitlines() if isinstance(raw, str) else [str(x) for x in as_list(raw)]
        for line in lines:
            user, sep, password = line.strip().partition(":")
            if sep and _is_plaintext(password):
                problems.append(f"chpasswd.list sets user '{user}' a plaintext password")
    if _is_plaintext(cfg.get("password")):
        problems.append("the top-level password sets the default user a plaintext password")
    for user in as_list(cfg.get("users")):
        if isinstance(user, Mapping) and user.get("plain_text_passwd"):
            problems.append(f"users entry '{user.get('name', '?')}' has plain_text_passwd")
    for module, command in commands(cfg):
        if _CHPASSWD_PIPE.search(command):
            problems.append(f"a {module} command sets a password from a literal")
    return problems


def user_data_password_problems(text: str) -> list[str]:
    if not text.strip():
        return []
    # parsed once per text for every policy that reads it (cloudconfig's cache)
    findings, not_cloud_config = judge_text(text, cloud_config_password_problems)
    if not_cloud_config:
        # a shell script or another format: the command forms are still visible
        return ["the user-data script sets a password from a literal"] if _CHPASSWD_PIPE.search(text) else []
    return list(findings)


def _decoded(where: str, encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
        return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, OSError, EOFError):
        cannot_check(f"the {where} user-data for plaintext passwords: it is not base64 of text or gzip")


def _user_data_texts(args: ResourceValidationArgs) -> list[tuple[str, str]]:
    out = []
    plain = get(args.props, "userData")
    if isinstance(plain, str):
        # a launch template takes its user-data base64-encoded
        out.append(("userData", _decoded("userData", plain) if args.resource_type == LAUNCH_TEMPLATE else plain))
    encoded = get(args.props, "userDataBase64")
    if isinstance(encoded, str):
        out.append(("userDataBase64", _decoded("userDataBase64", encoded)))
    return out


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for where, text in _user_data_texts(args):
        for problem in user_data_password_problems(text):
            report_violation(f"{where}: {problem}, readable by anyone who can read the server's user-data; "
                             "use SSH keys only (no password), or set a crypt hash and keep the secret in a "
                             "secrets store.", None)


server_user_data_no_plaintext_password = resource_policy(
    name="server-user-data-no-plaintext-password",
    description="Checks that no server user-data (hcloud servers, EC2 instances and launch templates) sets a "
                "password in plaintext (cloud-config chpasswd, password, plain_text_passwd, or a command "
                "piping one into chpasswd/passwd).",
    controls=["SEC-01"],
    severity=Severity.CRITICAL,
    remediation="Remove the password from user-data: log in with SSH keys, or give chpasswd a crypt hash "
                "($6$...) or RANDOM; fetch real secrets at boot from a secrets store.",
    validate=_validate,
    applies_to=(SERVER, EC2_INSTANCE, LAUNCH_TEMPLATE),
)
