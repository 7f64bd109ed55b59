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
5. When user-data's ``/etc/odoo-hosting/boot.json`` pins a host bundle
   (``"bundle": {"sha256", "url"}``), the host's files are user-data's and
   then the bundle's: :func:`host_cloud_config` finds the bundle among the
   stack's S3 bucket objects by its content's SHA-256 (the hash the host
   checks), and its ``files`` are written after user-data's (deferred
   ones included) and its ``activate`` commands run after ``runcmd``. The
   installer writes each file whole, in plain text, so bundle entries are
   never decoded. A pin the stack cannot resolve leaves the files unknown:
   not judgeable, never a pass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pulumi_policy.proxy import UnknownValueError

from . import sshd
from ._meta import get

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

    findings: tuple[str, ...]  # empty (and judged): key-only SSH
    not_judgeable: str | None = None  # why the text could not be checked


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


def parse_cloud_config(text: str) -> dict[str, Any]:
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


def _decode_content(entry: dict[str, Any], path: str) -> str:
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


def _apply_write(files: dict[str, str], entry: Any, wanted: Callable[[str], bool] = _is_sshd_path) -> None:
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


def _pwauth(value: Any) -> str | None:
    """cloud-init's reading of ssh_pwauth: 'yes', 'no' or None (unchanged)."""
    if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "on", "yes")):
        return "yes"
    if value is False or (isinstance(value, str) and value.strip().lower() in ("false", "0", "off", "no")):
        return "no"
    return None


def sshd_files(cfg: dict[str, Any]) -> dict[str, str]:
    """The sshd configuration files on the host after cloud-init ran ``cfg``."""
    files: dict[str, str] = {
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


def written_files(cfg: dict[str, Any], wanted: Callable[[str], bool],
                  base: dict[str, str] | None = None) -> dict[str, str]:
    """The files under ``wanted`` paths after cloud-init's write_files (deferred entries last),
    starting from ``base`` (what the image and packages put there)."""
    files: dict[str, str] = dict(base or {})
    entries = cfg.get("write_files") or []
    if not isinstance(entries, list):
        raise NotJudgeable("write_files is not a list")
    for deferred in (False, True):
        for entry in entries:
            if (isinstance(entry, dict) and entry.get("defer") is True) == deferred:
                _apply_write(files, entry, wanted)
    return files


def packages_of(cfg: dict[str, Any]) -> list[str]:
    """Package names in cloud-config ``packages`` (``name``, ``[name, version]``, ``name=version``)."""
    raw = cfg.get("packages") or []
    names: list[str] = []
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


_SSHD_YES = re.compile(r"\b(PasswordAuthentication|KbdInteractiveAuthentication|ChallengeResponseAuthentication|"
                       r"PermitEmptyPasswords|PermitRootLogin|UsePAM)\b\W{0,3}\s*(yes)\b", re.IGNORECASE)
_SSHD_EDIT = re.compile(r"sshd_config|/etc/ssh/sshd|\bsshd\s+-o\b")


def command_text(entry: Any) -> str:
    """A runcmd/bootcmd entry as one shell line (a list entry is argv)."""
    if isinstance(entry, (list, tuple)):
        return " ".join(str(a) for a in entry)
    return str(entry) if entry is not None else ""


def commands(cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(module, command) of every bootcmd and runcmd entry."""
    out = []
    for module in ("bootcmd", "runcmd"):
        entries = cfg.get(module) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            out.append((module, command_text(entry)))
    return out


def command_sshd_findings(cfg: Mapping[str, Any]) -> list[str]:
    """sshd settings changed by a command rather than a file: one that turns a password or root option on is
    a finding; one that edits sshd's configuration some other way cannot be judged, so it is a finding too."""
    findings = []
    for module, command in commands(cfg):
        on = _SSHD_YES.search(command)
        if on:
            findings.append(f"a {module} command turns {on.group(1)} on; remove it and keep the sshd drop-in "
                            "key-only")
        elif _SSHD_EDIT.search(command) and not command.lstrip().startswith(("systemctl", "sshd -t")):
            findings.append(f"a {module} command edits sshd's configuration, whose effect the policy cannot "
                            "judge; write the settings with write_files instead")
    return findings


def _cloud_init_findings(cfg: dict[str, Any]) -> list[str]:
    findings = command_sshd_findings(cfg)
    if _pwauth(cfg.get("ssh_pwauth")) == "yes":
        findings.append("ssh_pwauth is true, which turns SSH password authentication on; "
                        "set ssh_pwauth: false")
    disable_root = cfg.get("disable_root")
    if disable_root is False or (isinstance(disable_root, str)
                                 and disable_root.strip().lower() in ("false", "no", "0", "off")):
        findings.append("disable_root is false, which lets root log in with the SSH keys; "
                        "remove it or set disable_root: true")
    return findings


def sshd_findings(cfg: dict[str, Any]) -> list[str]:
    """ACC-01 findings for one (effective) cloud-config; :class:`NotJudgeable` when it cannot be read."""
    return _cloud_init_findings(cfg) + sshd.judge_files(sshd_files(cfg))


@functools.lru_cache(maxsize=128)
def _parsed(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(cfg, why not judgeable) for one user-data text, parsed once however many policies read it.

    Cached by content: a fleet's servers usually share a few templates. The
    cfg is shared: judges read it, never change it."""
    try:
        return parse_cloud_config(text), None
    except NotJudgeable as e:
        return None, str(e)


def judge_text(text: str, judge: Callable[..., Sequence[str]], *params: Any) -> tuple[tuple[str, ...], str | None]:
    """(findings, why not judgeable) of ``judge(cfg, *params)`` on one user-data text alone."""
    cfg, not_judgeable = _parsed(text)
    if cfg is None:
        return (), not_judgeable
    try:
        return tuple(judge(cfg, *params)), None
    except NotJudgeable as e:
        return (), str(e)


@functools.lru_cache(maxsize=128)
def assess_user_data(text: str) -> Assessment:
    """ACC-01 findings for one user-data text alone (no bundle)."""
    findings, not_judgeable = judge_text(text, sshd_findings)
    return Assessment(findings, not_judgeable)


# --- the host bundle ---------------------------------------------------------------
# odoo-hosting's user-data pins (in boot.json) a bundle of further host files that
# the host fetches from S3 and installs after cloud-init's runcmd; the stack stores
# it as a bucket object. What the host ends up with is user-data's files, then the
# bundle's, then the bundle's activation commands.

BOOT_CONFIG_PATH = "/etc/odoo-hosting/boot.json"
BUNDLE_HEADER = "#odoo-hosting-bundle v1"
BUNDLE_OBJECT_TYPES = frozenset({"aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject"})
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_ENCODINGS = ("", "text/plain")


@dataclass(frozen=True)
class BundlePin:
    """What boot.json says about the host's bundle."""

    sha256: str
    url: str

    def __str__(self) -> str:
        return f"host bundle {self.sha256[:12]} ({self.url})"


def bundle_pin(cfg: dict[str, Any]) -> BundlePin | None:
    """The bundle a cloud-config's boot.json pins; None when it pins none; :class:`NotJudgeable`
    when boot.json or its pin cannot be read (a pin that cannot be read hides the host's files)."""
    text = written_files(cfg, lambda path: path == BOOT_CONFIG_PATH).get(BOOT_CONFIG_PATH)
    if text is None:
        return None
    try:
        boot = json.loads(text)
    except ValueError:
        raise NotJudgeable(f"userData's {BOOT_CONFIG_PATH} is not JSON, so whether it pins a host bundle "
                           "cannot be read") from None
    pin = boot.get("bundle") if isinstance(boot, dict) else None
    if pin is None:
        return None
    sha, url = (pin.get("sha256"), pin.get("url")) if isinstance(pin, dict) else (None, None)
    if not (isinstance(sha, str) and _SHA256_RE.match(sha) and isinstance(url, str) and url.strip()):
        raise NotJudgeable(f"userData's {BOOT_CONFIG_PATH} pins a host bundle without a sha256 (64 lower-case "
                           "hex digits) and a url, so the host's bundled files cannot be known")
    return BundlePin(sha, url.strip())


@functools.lru_cache(maxsize=64)
def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bundle_entry(index: int, entry: Any) -> dict[str, Any]:
    """One ``files`` entry as the installer writes it (plain text, whole file), or :class:`NotJudgeable`."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"].startswith("/"):
        raise NotJudgeable(f"files entry {index + 1} has no absolute path")
    path = entry["path"]
    for key in ("content", "owner", "permissions"):
        if not isinstance(entry.get(key), str):
            raise NotJudgeable(f"files entry {path} has no {key} string (the installer needs content, owner "
                               "and permissions)")
    encoding = str(entry.get("encoding") or "").strip().lower()
    if encoding not in _PLAIN_ENCODINGS or entry.get("source") is not None or entry.get("append"):
        raise NotJudgeable(f"files entry {path} uses encoding, source or append, but the installer writes "
                           "content as the whole file in plain text")
    # What the installer writes; deferred: cloud-init's own deferred files are on disk first.
    return {"path": path, "content": entry["content"], "defer": True}


@functools.lru_cache(maxsize=64)
def read_bundle(text: str) -> tuple[tuple[dict[str, Any], ...], tuple[list[str], ...], str | None]:
    """(files, activate, why unreadable) of one bundle text."""
    try:
        if text.split("\n", 1)[0].rstrip("\r") != BUNDLE_HEADER:
            raise NotJudgeable(f"it does not start with the line {BUNDLE_HEADER}")
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise NotJudgeable("it is not valid YAML" + (f" (line {mark.line + 1})" if mark else "")) from None
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise NotJudgeable("it has no files list")
        files = tuple(_bundle_entry(i, entry) for i, entry in enumerate(data["files"]))
        activate = data.get("activate") or []
        if not isinstance(activate, list) or not all(
                isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in activate):
            raise NotJudgeable("its activate is not a list of commands (lists of strings)")
    except NotJudgeable as e:
        return (), (), str(e)
    return files, tuple(activate), None


@dataclass(frozen=True)
class BundleLookup:
    """Where a pinned bundle is in the stack: its content and object, or why it is not there."""

    content: str | None = None
    resource: Any = None
    problem: str | None = None


UNKNOWN_INPUT = object()
"""What :func:`safe_input` gives for an input unknown at preview."""


def safe_input(resource: Any, key: str) -> Any:
    """``resource``'s input ``key``, :data:`UNKNOWN_INPUT` when it is unknown at preview."""
    try:
        return get(resource.props, key)
    except UnknownValueError:
        return UNKNOWN_INPUT


def bundle_objects(resources: Iterable[Any]) -> list[Any]:
    return [r for r in resources if r.resource_type in BUNDLE_OBJECT_TYPES]


def find_bundle(pin: BundlePin, resources: Iterable[Any]) -> BundleLookup:
    """The stack's bucket object whose content hashes to the pin (the host checks the same hash)."""
    objects = bundle_objects(resources)
    others = []
    for obj in objects:
        content = safe_input(obj, "content")
        if isinstance(content, str) and _sha256(content) == pin.sha256:
            return BundleLookup(content=content, resource=obj)
        key = safe_input(obj, "key")
        if content is UNKNOWN_INPUT:
            others.append(f"the content of '{obj.name}' is unknown at preview")
        elif not isinstance(content, str):
            others.append(f"'{obj.name}' has no content string")
        elif isinstance(key, str) and pin.sha256 in key:
            others.append(f"'{obj.name}' at key {key} has content with SHA-256 {_sha256(content)[:12]}, "
                          "not the pinned one (the host would refuse it)")
    if not objects:
        why = "the stack has no S3 bucket object"
    else:
        why = "; ".join(others) or f"no content of its {len(objects)} S3 bucket object(s) has that SHA-256"
    return BundleLookup(problem=f"userData pins {pin}, which the stack does not hold: {why}")


@dataclass(eq=False)
class HostCloudConfig:
    """What cloud-init and the bundle installer give a server: the effective cloud-config
    (user-data's, with the bundle's files written after its own and the bundle's activation
    commands after its runcmd), or why it cannot be known."""

    cfg: dict[str, Any] | None
    source: str = "userData"
    """Where the files come from, for messages: userData, or userData and its bundle."""
    missing: bool = False
    """The server has no userData at all."""
    not_judgeable: str | None = None
    """Why user-data or its bundle cannot be read (unknown at preview, not a cloud-config, bundle missing)."""
    pin: BundlePin | None = None
    bundle_problem: str | None = None
    """Why the pinned bundle (or the pin) cannot be used; also in ``not_judgeable``."""
    _judged: dict[Any, tuple[tuple[str, ...], str | None]] = field(default_factory=dict, repr=False)

    def judge(self, judge: Callable[..., Sequence[str]], *params: Any) -> tuple[tuple[str, ...], str | None]:
        """(findings, why not judgeable) of ``judge(cfg, *params)``, judged once per config."""
        key = (judge, params)
        if key not in self._judged:
            if self.cfg is None:
                self._judged[key] = ((), self.not_judgeable)
            else:
                try:
                    self._judged[key] = (tuple(judge(self.cfg, *params)), None)
                except NotJudgeable as e:
                    self._judged[key] = ((), str(e))
        return self._judged[key]


@functools.lru_cache(maxsize=64)
def _user_data_host(text: str) -> tuple[HostCloudConfig, BundlePin | None]:
    cfg, not_judgeable = _parsed(text)
    if cfg is None:
        return HostCloudConfig(None, not_judgeable=not_judgeable), None
    try:
        pin = bundle_pin(cfg)
    except NotJudgeable as e:
        return HostCloudConfig(None, not_judgeable=str(e), bundle_problem=str(e)), None
    return HostCloudConfig(cfg), pin


def _unusable(pin: BundlePin, problem: str) -> HostCloudConfig:
    return HostCloudConfig(None, not_judgeable=problem, pin=pin, bundle_problem=problem)


@functools.lru_cache(maxsize=64)
def _bundled_host(text: str, bundle: str) -> HostCloudConfig:
    user_data, pin = _user_data_host(text)
    assert user_data.cfg is not None and pin is not None
    files, activate, unreadable = read_bundle(bundle)
    if unreadable:
        return _unusable(pin, f"{pin} is not a readable {BUNDLE_HEADER} document: {unreadable}")
    cfg = dict(user_data.cfg)
    own_files = cfg.get("write_files") or []
    runcmd = cfg.get("runcmd") or []
    cfg["write_files"] = [*own_files, *files] if isinstance(own_files, list) else own_files
    cfg["runcmd"] = [*(runcmd if isinstance(runcmd, list) else [runcmd]), *activate]
    return HostCloudConfig(cfg, source=f"userData with its host bundle {pin.sha256[:12]}", pin=pin)


def host_cloud_config(server_props: Mapping[str, Any], resources: Iterable[Any]) -> HostCloudConfig:
    """The effective cloud-config of a server (``hcloud:index/server:Server`` props) in a stack.

    Parsed and merged once per user-data and bundle text, however many policies ask."""
    try:
        user_data = get(server_props, "userData")
    except UnknownValueError:
        return HostCloudConfig(None, not_judgeable="userData is unknown at preview (it depends on a value "
                                                   "decided at deploy time), so the host's files cannot be read")
    if user_data is None or (isinstance(user_data, str) and not user_data.strip()):
        return HostCloudConfig(None, missing=True)
    text = user_data if isinstance(user_data, str) else str(user_data)
    host, pin = _user_data_host(text)
    if pin is None:
        return host
    found = find_bundle(pin, resources)
    if found.content is None:
        return _unusable(pin, found.problem or f"{pin} cannot be found")
    return _bundled_host(text, found.content)
