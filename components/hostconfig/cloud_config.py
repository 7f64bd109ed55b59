"""The whole first-boot configuration as one ``#cloud-config`` document.

It becomes the Hetzner server's user_data: readable through the cloud API
(so it holds no secret) and a change replaces the server (so it is a
deterministic function of the settings).
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import re
import tokenize
from typing import Any, Optional

import yaml

from components.settings import Settings

from .backup import BACKUP_PACKAGES, BACKUP_TIMERS, backup_write_files
from .boot_secrets import render_boot_config, render_secret_fetch_script
from .data_volume import render_data_volume_script, render_data_volume_unit
from .docker import DOCKER_PACKAGES, docker_runcmd, docker_write_files
from .fail2ban import (
    render_fail2ban_alert_action, render_fail2ban_jail, render_fail2ban_odoo_filter,
)
from .nftables import render_nftables
from .paths import (
    APT_TIMER_OVERRIDE_PATH, BOOT_CONFIG_PATH, DATA_VOLUME_SCRIPT_PATH, DATA_VOLUME_UNIT_NAME,
    DATA_VOLUME_UNIT_PATH, FAIL2BAN_ALERT_ACTION_PATH, FAIL2BAN_JAIL_PATH, FAIL2BAN_ODOO_FILTER_PATH, NFTABLES_PATH, ODOO_LOG_PATH,
    ROOT_OWNER, SECRET_FETCH_PATH, SSHD_DROPIN_PATH, UNATTENDED_UPGRADES_PATH, WIREGUARD_CONFIG_PATH,
    WIREGUARD_INTERFACE,
)
from .sshd import render_sshd_dropin
from .updates import render_apt_timer_override, render_unattended_upgrades
from .wireguard import render_wireguard_config

HETZNER_USER_DATA_LIMIT = 32 * 1024
"""Hetzner refuses user_data above 32 KiB."""

PACKAGES = (
    "nftables", "fail2ban", "python3-systemd", "unattended-upgrades", "cryptsetup", "wireguard-tools",
    *BACKUP_PACKAGES,
    *DOCKER_PACKAGES,
)


def _file(path: str, content: str, permissions: str, owner: str = ROOT_OWNER) -> dict[str, Any]:
    return {"path": path, "owner": owner, "permissions": permissions, "content": content}


def write_files(settings: Settings, *, vault_address: Optional[str] = None) -> list[dict[str, Any]]:
    """Every file the host gets, with explicit owner and mode; executables packed (see :func:`_pack_executable`)."""
    return [_pack_executable(f) for f in _unpacked_files(settings, vault_address=vault_address)]


def _unpacked_files(settings: Settings, *, vault_address: Optional[str] = None) -> list[dict[str, Any]]:
    return [
        _file(SSHD_DROPIN_PATH, render_sshd_dropin(settings), "0644"),
        _file(NFTABLES_PATH, render_nftables(settings), "0755"),
        _file(FAIL2BAN_JAIL_PATH, render_fail2ban_jail(settings), "0644"),
        _file(FAIL2BAN_ODOO_FILTER_PATH, render_fail2ban_odoo_filter(), "0644"),
        _file(FAIL2BAN_ALERT_ACTION_PATH, render_fail2ban_alert_action(), "0644"),
        # Empty, so the Odoo jail can start on first boot, before Odoo runs.
        _file(ODOO_LOG_PATH, "", "0640", owner="root:adm"),
        _file(UNATTENDED_UPGRADES_PATH, render_unattended_upgrades(settings), "0644"),
        _file(APT_TIMER_OVERRIDE_PATH, render_apt_timer_override(settings), "0644"),
        _file(BOOT_CONFIG_PATH, render_boot_config(settings, vault_address=vault_address), "0644"),
        _file(SECRET_FETCH_PATH, render_secret_fetch_script(), "0700"),
        _file(DATA_VOLUME_SCRIPT_PATH, render_data_volume_script(settings), "0700"),
        _file(DATA_VOLUME_UNIT_PATH, render_data_volume_unit(settings), "0644"),
        _file(WIREGUARD_CONFIG_PATH, render_wireguard_config(settings), "0600"),
        *backup_write_files(settings),
        *docker_write_files(settings),
    ]


def _pack_executable(entry: dict[str, Any]) -> dict[str, Any]:
    """Scripts (mode 0700) travel as ``encoding: gz+b64``, without their inner comments
    (:func:`_without_comments`): Hetzner caps user-data at 32 KiB and the scripts
    are most of it. Configuration stays plain text, so a reviewer and the policy
    pack read it as is (the pack decodes gz+b64 too). gzip without a timestamp
    keeps the user-data deterministic."""
    if entry["permissions"] != "0700" or not entry["content"]:
        return entry
    script = _without_comments(entry["content"])
    packed = base64.b64encode(gzip.compress(script.encode(), compresslevel=9, mtime=0)).decode()
    return {**entry, "encoding": "gz+b64", "content": packed}


def _without_comments(script: str) -> str:
    """The host's copy of a script keeps its header (what it is, how to run it) and
    every line of code; the reasoning comments below the header, and Python's
    function docstrings, stay in the repository (1.4 KB of user-data, 8% of the
    packed scripts). tests/render/test_cloud_config.py holds the code to bash's
    and Python's own parse of it."""
    lines = script.splitlines(keepends=True)
    if not lines or not lines[0].startswith("#!"):
        return script
    drop = _python_comment_lines(script) if "python" in lines[0] else _shell_comment_lines(lines)
    return "".join(line for number, line in enumerate(lines, 1) if number not in drop)


_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def _shell_comment_lines(lines: list[str]) -> set[int]:
    drop: set[int] = set()
    header, heredoc = True, None
    for number, line in enumerate(lines[1:], 2):
        header = header and line.startswith("#")
        if heredoc:  # a heredoc's body is data, whatever it starts with
            heredoc = None if line.strip() == heredoc else heredoc
        elif line.lstrip().startswith("#"):
            if not header:
                drop.add(number)
        elif match := _HEREDOC.search(line.replace("<<<", "")):
            heredoc = match.group(2)
    return drop


def _parse_python(script: str) -> ast.Module:
    # CPython 3.11 can raise a spurious "AST constructor recursion depth
    # mismatch" SystemError when another thread runs Python code while the
    # tree is built (python/cpython#106905); Pulumi's SDK runs threads. The
    # parse itself is sound, so a second attempt gives the tree.
    for attempt in range(3):
        try:
            return ast.parse(script)
        except SystemError as e:
            if "recursion depth mismatch" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _python_comment_lines(script: str) -> set[int]:
    # A line whose first non-blank character is "#" is a comment unless it
    # lies inside a string literal's span. ast (C-fast) gives those spans;
    # only when a "#" line falls inside one (a triple-quoted string, or a
    # comment between the parts of an implicit concatenation) does the
    # tokenizer, ten times slower, decide.
    # Only nodes spanning several lines matter (a one-line string hides no
    # line, a one-line def has no docstring of its own lines), so one-line
    # subtrees, nine nodes in ten, are not walked.
    inside: set[int] = set()
    drop: set[int] = set()
    todo: list[ast.AST] = [_parse_python(script)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))):
            inside.update(range(node.lineno + 1, node.end_lineno + 1))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and ast.get_docstring(node) \
                and len(node.body) > 1 and node.lineno < node.body[0].lineno:
            drop.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
        todo.extend(child for child in ast.iter_child_nodes(node)
                    if getattr(child, "end_lineno", None) is None or child.end_lineno > child.lineno)
    hashed = {number for number, line in enumerate(script.splitlines(), 1)
              if number > 1 and line.lstrip().startswith("#")}
    if hashed & inside:
        hashed = {token.start[0] for token in tokenize.generate_tokens(io.StringIO(script).readline)
                  if token.type == tokenize.COMMENT and token.start[0] > 1 and token.line.lstrip().startswith("#")}
    return drop | hashed


def cloud_config(settings: Settings, *, vault_address: Optional[str] = None) -> dict[str, Any]:
    """The cloud-config as plain data (before YAML)."""
    return {
        "ssh_pwauth": False,
        "disable_root": True,
        "users": [{
            "name": settings.admin_user,
            "groups": "sudo",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,
            "shell": "/bin/bash",
            "ssh_authorized_keys": [key.public_key for key in settings.ssh_keys],
        }],
        # Leave the locale alone: setting one runs locale-gen/update-locale,
        # which minimal images lack, and cloud-init's locale module then fails.
        # cloud-init 22.4's schema wants a string here; "false" (util.is_false)
        # makes the module skip itself.
        "locale": "false",
        # systemd timers and unattended-upgrades' reboot time are local time.
        "timezone": "Etc/UTC",
        "package_update": True,
        "package_upgrade": True,
        "packages": list(PACKAGES),
        "write_files": write_files(settings, vault_address=vault_address),
        # The logic lives in the units and scripts above; units that wait for
        # Vault start without blocking cloud-init.
        "runcmd": [
            _Command(["systemctl", "daemon-reload"]),
            _Command(["systemctl", "enable", "--now", "nftables.service"]),
            _Command(["systemctl", "enable", "--now", "--no-block", DATA_VOLUME_UNIT_NAME]),
            _Command(["systemctl", "enable", "--now", "--no-block", f"wg-quick@{WIREGUARD_INTERFACE}.service"]),
            _Command(["systemctl", "enable", "fail2ban.service"]),
            _Command(["systemctl", "restart", "fail2ban.service"]),
            _Command(["systemctl", "enable", "--now", *BACKUP_TIMERS]),
            *(_Command(c) for c in docker_runcmd(settings)),
        ],
    }


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """SafeDumper writing multi-line strings as literal blocks.

    The libyaml-backed dumper writes the same bytes about 15x faster, which
    matters when preflight renders a whole fleet; the pure-Python one is the
    fallback where PyYAML was built without libyaml."""


class _Command(list):
    """A runcmd entry, written in flow style: ``[systemctl, daemon-reload]``."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(
    _Command, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


def render_cloud_config(settings: Settings, *, vault_address: Optional[str] = None) -> str:
    """The ``#cloud-config`` user_data for the client's host.

    ``vault_address`` overrides ``settings.vault_address`` (and the module default).
    """
    body = yaml.dump(cloud_config(settings, vault_address=vault_address), Dumper=_Dumper,
                     sort_keys=False, default_flow_style=False, allow_unicode=False, width=4096)
    return "#cloud-config\n" + body
