"""Judge a server's user-data for key-only SSH (ACC-01), without running it.

Pure functions over the user-data text. The model of what cloud-init does
on a Debian 12 image, pessimistic where the image is not known:

1. user-data is a cloud-config when, after leading whitespace and ignoring
   case, it starts with ``#cloud-config`` (cloud-init's own test), or with a
   ``## template: jinja`` line followed by one. Anything else (shell script,
   MIME multipart, ``#include``, archives) is not judged: the caller reports
   it as "cannot be checked".
2. ``write_files`` entries (``b64``/``base64``/``gz``/``gzip``/``gz+b64``/
   ``gzip+base64`` encodings, ``append``) are applied in order; ``defer: true``
   entries are applied after ``ssh_pwauth`` (cloud-init writes them in its
   final stage).
3. ``ssh_pwauth`` true/false sets ``PasswordAuthentication yes/no`` in
   ``/etc/ssh/sshd_config.d/50-cloud-init.conf`` when the main config has
   cloud-init's ``Include`` line, otherwise in the main config (that is what
   cloud-init's ``update_ssh_config`` does). Absent or ``unchanged`` leaves
   the image default, assumed to be a ``50-cloud-init.conf`` that turns
   password authentication on.
4. The effective sshd configuration is then computed by :mod:`.sshd`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from . import sshd

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_JINJA_HEADER_RE = re.compile(r"^##\s*template:\s*jinja\s*$", re.IGNORECASE)
_JINJA_EXPR_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_JINJA_COMMENT_RE = re.compile(r"\{#.*?#\}", re.DOTALL)
_JINJA_STATEMENT_RE = re.compile(r"\{%.*?%\}", re.DOTALL)
# What an unrenderable ``{{ ... }}`` becomes: a value no sshd rule accepts.
JINJA_PLACEHOLDER = "__jinja_expression__"

# The image's own 50-cloud-init.conf when user-data does not set ssh_pwauth.
IMAGE_DEFAULT_CLOUD_INIT_DROP_IN = "PasswordAuthentication yes\n"

_CLOUD_INIT_INCLUDE = f"Include {sshd.SSHD_CONFIG}.d/*.conf"


class NotJudgeable(Exception):
    """The user-data cannot be checked; the message says why."""


@dataclass(frozen=True)
class Assessment:
    """The outcome for one user-data text."""

    findings: Tuple[str, ...]  # empty (and judged): key-only SSH
    not_judgeable: Optional[str] = None  # why the text could not be checked


def _kind_of(text: str) -> str:
    lowered = text.lstrip().lower()
    if lowered.startswith("#cloud-config-archive"):
        return "a #cloud-config-archive"
    if lowered.startswith("#cloud-config"):
        return "cloud-config"
    if lowered.startswith("#!"):
        return "a shell script"
    if lowered.startswith("#include"):
        return "an #include list"
    if lowered.startswith("#cloud-boothook"):
        return "a #cloud-boothook"
    if lowered.startswith("#part-handler"):
        return "a #part-handler"
    if lowered.startswith("content-type:") or lowered.startswith("mime-version:"):
        return "a MIME multipart message"
    return "not a recognised cloud-init format"


def _strip_jinja(text: str) -> str:
    lines = text.lstrip().split("\n", 1)
    body = lines[1] if len(lines) > 1 else ""
    if _JINJA_STATEMENT_RE.search(body):
        raise NotJudgeable(
            "the jinja template uses {% ... %} statements, so what cloud-init renders cannot be known "
            "before boot; render the cloud-config in the program instead")
    body = _JINJA_COMMENT_RE.sub("", body)
    return _JINJA_EXPR_RE.sub(JINJA_PLACEHOLDER, body)


def parse_cloud_config(text: str) -> Dict[str, Any]:
    """The cloud-config mapping, or :class:`NotJudgeable`."""
    if not isinstance(text, str):
        raise NotJudgeable("userData is not a string")
    stripped = text.lstrip("\ufeff")
    first_line = stripped.lstrip().split("\n", 1)[0].strip()
    if _JINJA_HEADER_RE.match(first_line):
        stripped = _strip_jinja(stripped)
    kind = _kind_of(stripped)
    if kind != "cloud-config":
        raise NotJudgeable(
            f"userData is {kind}, not a #cloud-config, so its SSH settings cannot be checked")
    try:
        # libyaml's loader: user-data is tens of KB and parsed once per
        # server per preview; the pure-Python loader is ~10x slower.
        data = yaml.load(stripped, Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise NotJudgeable(f"userData is not valid cloud-config YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NotJudgeable("userData's #cloud-config is not a YAML mapping")
    return data


def _normalise_path(path: str) -> str:
    path = "/" + path.strip().lstrip("/")
    return posixpath.normpath(path)


def _decode_content(entry: Dict[str, Any], path: str) -> str:
    content = entry.get("content", "")
    if content is None:
        content = ""
    encoding = str(entry.get("encoding") or "").strip().lower()
    try:
        if isinstance(content, str):
            raw = content.encode("utf-8")
        elif isinstance(content, (bytes, bytearray)):
            raw = bytes(content)
        else:
            raw = str(content).encode("utf-8")
        if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            raw = base64.b64decode(raw)
        if encoding in ("gz", "gzip", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (binascii.Error, OSError, EOFError, UnicodeDecodeError, ValueError):
        raise NotJudgeable(
            f"write_files entry for {path} cannot be decoded with encoding '{encoding or 'text/plain'}'"
        ) from None


def _is_sshd_path(path: str) -> bool:
    return path == sshd.SSHD_CONFIG or path.startswith(sshd.SSHD_CONFIG_DIR + "/") or path.startswith("/etc/ssh/")


def _apply_write(files: Dict[str, str], entry: Any, wanted: Callable[[str], bool] = _is_sshd_path) -> None:
    if not isinstance(entry, dict) or "path" not in entry:
        return
    path = _normalise_path(str(entry["path"]))
    if not wanted(path):
        return
    if entry.get("source") is not None:
        raise NotJudgeable(f"write_files entry for {path} downloads its content ('source'), "
                           "so it cannot be checked; give the content inline")
    content = _decode_content(entry, path)
    if entry.get("append") is True:
        files[path] = files.get(path, "") + content
    else:
        files[path] = content


def _update_ssh_config_lines(text: str, key: str, value: str) -> str:
    """cloud-init's update_ssh_config_lines: replace every line of ``key``, else append."""
    out, found = [], False
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if parts and not parts[0].startswith("#") and parts[0].lower() == key.lower():
            out.append(f"{key} {value}")
            found = True
        else:
            out.append(line)
    if not found:
        out.append(f"{key} {value}")
    return "\n".join(out) + "\n"


def _pwauth(value: Any) -> Optional[str]:
    """cloud-init's reading of ssh_pwauth: 'yes', 'no' or None (unchanged)."""
    if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "on", "yes")):
        return "yes"
    if value is False or (isinstance(value, str) and value.strip().lower() in ("false", "0", "off", "no")):
        return "no"
    return None


def sshd_files(cfg: Dict[str, Any]) -> Dict[str, str]:
    """The sshd configuration files on the host after cloud-init ran ``cfg``."""
    files: Dict[str, str] = {
        sshd.SSHD_CONFIG: sshd.DEBIAN_SSHD_CONFIG,
        sshd.CLOUD_INIT_DROP_IN: IMAGE_DEFAULT_CLOUD_INIT_DROP_IN,
    }
    entries = cfg.get("write_files") or []
    if not isinstance(entries, list):
        raise NotJudgeable("write_files is not a list")
    for entry in entries:
        if not (isinstance(entry, dict) and entry.get("defer") is True):
            _apply_write(files, entry)
    setting = _pwauth(cfg.get("ssh_pwauth"))
    if setting is not None:
        main = files.get(sshd.SSHD_CONFIG, "")
        includes_dconf = any(line.startswith(_CLOUD_INIT_INCLUDE) for line in main.splitlines())
        target = sshd.CLOUD_INIT_DROP_IN if includes_dconf else sshd.SSHD_CONFIG
        # cloud-init edits the drop-in it finds; when ssh_pwauth is set, the
        # image's own drop-in is replaced by what cloud-init writes.
        existing = files.get(target, "")
        files[target] = _update_ssh_config_lines(existing, "PasswordAuthentication", setting)
    for entry in entries:
        if isinstance(entry, dict) and entry.get("defer") is True:
            _apply_write(files, entry)
    return files


def written_files(cfg: Dict[str, Any], wanted: Callable[[str], bool],
                  base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The files under ``wanted`` paths after cloud-init's write_files (deferred entries last),
    starting from ``base`` (what the image and packages put there)."""
    files: Dict[str, str] = dict(base or {})
    entries = cfg.get("write_files") or []
    if not isinstance(entries, list):
        raise NotJudgeable("write_files is not a list")
    for deferred in (False, True):
        for entry in entries:
            if (isinstance(entry, dict) and entry.get("defer") is True) == deferred:
                _apply_write(files, entry, wanted)
    return files


def packages_of(cfg: Dict[str, Any]) -> List[str]:
    """Package names in cloud-config ``packages`` (``name``, ``[name, version]``, ``name=version``)."""
    raw = cfg.get("packages") or []
    names: List[str] = []
    if not isinstance(raw, list):
        return names
    for item in raw:
        if isinstance(item, list) and item:
            item = item[0]
        if isinstance(item, str):
            names.append(item.split("=", 1)[0].strip().lower())
        elif isinstance(item, dict):  # cloud-init 23+: {apt: [...], snap: [...]}
            for value in item.get("apt") or []:
                if isinstance(value, list) and value:
                    value = value[0]
                if isinstance(value, str):
                    names.append(value.split("=", 1)[0].strip().lower())
    return names


def _cloud_init_findings(cfg: Dict[str, Any]) -> List[str]:
    findings = []
    if _pwauth(cfg.get("ssh_pwauth")) == "yes":
        findings.append("ssh_pwauth is true, which turns SSH password authentication on; "
                        "set ssh_pwauth: false")
    disable_root = cfg.get("disable_root")
    if disable_root is False or (isinstance(disable_root, str) and disable_root.strip().lower() in ("false", "no", "0", "off")):
        findings.append("disable_root is false, which lets root log in with the SSH keys; "
                        "remove it or set disable_root: true")
    return findings


@functools.lru_cache(maxsize=128)
def assess_user_data(text: str) -> Assessment:
    """ACC-01 findings for one user-data text.

    Cached by content: a fleet's servers usually share a few templates.
    """
    try:
        cfg = parse_cloud_config(text)
        findings = _cloud_init_findings(cfg)
        findings.extend(sshd.judge_files(sshd_files(cfg)))
    except NotJudgeable as e:
        return Assessment((), str(e))
    return Assessment(tuple(findings))
