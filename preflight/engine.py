"""Running a Pulumi Python program in-process under mocks, recording what the engine would see.

The Python SDK talks to the engine through a "resource monitor". Pulumi's
`MockMonitor` stands in for it in unit tests; `RecordingMonitor` extends it so
that every registration is kept with engine-shaped URNs, raw (wire) inputs that
still carry secret markers, resource options, and the provider the engine
would use (including the default providers it synthesizes).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import importlib.machinery
import io
import json
import os
import re
import runpy
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

from google.protobuf import json_format, struct_pb2

import pulumi
from pulumi import _types as pulumi_types, log as pulumi_log, output as pulumi_output
from pulumi.runtime import resource as pulumi_resource_runtime, rpc as pulumi_rpc, settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, Mocks
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.stack import run_in_stack

from . import SECRET_PLACEHOLDER
from .project import StackConfig

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_PREFIX = "pulumi:providers:"


@dataclass
class ResourceRecord:
    """One resource as the engine would hold it during a preview."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    id: str
    inputs: dict
    """Wire form (protobuf Struct as a dict): secrets still wrapped in the secret signature object."""
    options: dict
    provider_urn: str = ""
    """URN of the provider resource that manages this resource ("" for components)."""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class StackRun:
    """Outcome of running one stack of a program."""

    config: StackConfig
    resources: list[ResourceRecord]
    error: Optional[str] = None
    traceback: Optional[str] = None
    output: str = ""
    """What the program printed, plus what it logged through pulumi.log."""
    elapsed_ms: float = 0.0


# ---------------------------------------------------------------------------
# Wire-value helpers


def _normalize_numbers(value: Any) -> Any:
    """Protobuf Struct numbers are doubles; show integral ones as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict:
    """A protobuf Struct as plain Python (what ``json_format.MessageToDict`` gives, a few times faster)."""
    return {key: _value_to_python(value) for key, value in struct.fields.items()}


def _value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return {k: _value_to_python(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value_to_python(v) for v in value.list_value.values]
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _downgrade_refs(value: Any) -> Any:
    """Replace resource references by their id (custom) or URN (component).

    The engine does this when it marshals properties for analyzers, which do not
    accept resource references; output values are reduced to their plain value.
    """
    if isinstance(value, list):
        return [_downgrade_refs(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == RESOURCE_SIG:
            return value.get("id") or value.get("urn", "")
        if sig == OUTPUT_SIG:
            inner = _downgrade_refs(value.get("value", UNKNOWN))
            if value.get("secret"):
                return {SIG_KEY: SECRET_SIG, "value": inner}
            return inner
        return {k: _downgrade_refs(v) for k, v in value.items()}
    return value


def mask_secrets(value: Any, mask: str) -> Any:
    """Replace every secret-wrapped value by `mask` (for output meant for people)."""
    if isinstance(value, list):
        return [mask_secrets(v, mask) for v in value]
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return mask
        return {k: mask_secrets(v, mask) for k, v in value.items()}
    return value


def _parse_duration(text: str) -> float:
    """Go-style duration ("5m", "1h30m", "90s") to seconds, as the engine sends analyzers."""
    if not text:
        return 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * units[unit]
    return total


# ---------------------------------------------------------------------------
# Realistic outputs


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _placeholder(urn: str, prop: str, length: int = 0) -> str:
    text = f"{SECRET_PLACEHOLDER}-{prop}-{_digest(urn, prop)[:12]}"
    # Programs may check a secret's length (e.g. a password policy); honour it.
    while len(text) < length:
        text += _digest(text)[: length - len(text)]
    return text


class _OutputTable:
    """Plausible ids and computed outputs for well-known resource types.

    Deliberately small and generic: ids look like the provider's (numeric for
    hcloud, ARNs for aws), and the handful of computed fields programs commonly
    read (addresses, ARNs, PEMs) get believable values.
    """

    def __init__(self) -> None:
        self._counter = 0
        self._lock = threading.Lock()

    def _next(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def outputs(self, type_: str, name: str, urn: str, inputs: dict, region: str) -> tuple[str, dict]:
        pkg = type_.split(":")[0]
        module = type_.split(":")[1].split("/")[0] if type_.count(":") >= 2 else ""
        kind = type_.rsplit(":", 1)[-1]
        n = self._next()
        out: dict[str, Any] = {}
        rid = f"{name}-{_digest(urn)[:8]}"

        if pkg == "hcloud":
            rid = str(10_000_000 + n)
            if kind == "Server":
                out.update(
                    ipv4Address=f"203.0.113.{n % 250 + 1}",
                    ipv6Address=f"2001:db8:{n:x}::1",
                    ipv6Network=f"2001:db8:{n:x}::/64",
                    status="running",
                )
            elif kind == "Volume":
                out["linuxDevice"] = f"/dev/disk/by-id/scsi-0HC_Volume_{rid}"
            elif kind in ("PrimaryIp", "FloatingIp"):
                out["ipAddress"] = f"198.51.100.{n % 250 + 1}"
        elif pkg == "aws":
            account = "123456789012"
            if kind == "Bucket" and module == "s3":
                bucket = inputs.get("bucket") or f"{name}-{_digest(urn)[:7]}"
                rid = bucket
                out.update(
                    bucket=bucket,
                    arn=f"arn:aws:s3:::{bucket}",
                    bucketDomainName=f"{bucket}.s3.amazonaws.com",
                    bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com",
                    region=inputs.get("region") or region,
                )
            elif module == "kms" and kind == "Key":
                rid = str(uuid.UUID(_digest(urn)[:32]))
                out.update(keyId=rid, arn=f"arn:aws:kms:{region}:{account}:key/{rid}")
            elif module == "iam":
                rid = inputs.get("name") or rid
                if kind == "AccessKey":
                    rid = "AKIA" + _digest(urn)[:16].upper()
                else:
                    out["arn"] = f"arn:aws:iam::{account}:{kind[0].lower() + kind[1:]}/{rid}"
                    out["uniqueId"] = "AID" + _digest(urn)[:17].upper()
            out.setdefault("arn", f"arn:aws:{module}:{region}:{account}:{kind.lower()}/{rid}")
        elif pkg == "random":
            length = int(inputs.get("length") or 16)
            if kind in ("RandomPassword", "RandomString"):
                out["result"] = _placeholder(urn, "result", length)
                rid = "none"
            elif kind == "RandomId":
                hexv = _digest(urn)[: 2 * int(inputs.get("byteLength") or 8)]
                out.update(hex=hexv, dec=str(int(hexv, 16)), b64Url=hexv, b64Std=hexv)
                rid = hexv
            elif kind == "RandomUuid":
                rid = out["result"] = str(uuid.UUID(_digest(urn)[:32]))
            elif kind == "RandomInteger":
                out["result"] = int(inputs.get("min") or 0)
                rid = str(out["result"])
            elif kind == "RandomPet":
                rid = f"preflight-{_digest(urn)[:6]}"
        elif pkg == "tls":
            if kind == "PrivateKey":
                algo = inputs.get("algorithm", "RSA")
                ssh_type = {"ED25519": "ssh-ed25519", "ECDSA": "ecdsa-sha2-nistp256"}.get(algo, "ssh-rsa")
                out.update(
                    publicKeyPem="-----BEGIN PUBLIC KEY-----\nPREFLIGHT\n-----END PUBLIC KEY-----\n",
                    publicKeyOpenssh=f"{ssh_type} AAAAPREFLIGHT{_digest(urn)[:16]}\n",
                    publicKeyFingerprintSha256="SHA256:" + _digest(urn)[:43],
                    publicKeyFingerprintMd5=":".join(_digest(urn)[i : i + 2] for i in range(0, 32, 2)),
                )
                rid = _digest(urn)[:40]
            elif kind in ("SelfSignedCert", "LocallySignedCert"):
                hours = int(inputs.get("validityPeriodHours") or 0)
                now = time.time()
                out.update(
                    certPem="-----BEGIN CERTIFICATE-----\nPREFLIGHT\n-----END CERTIFICATE-----\n",
                    validityStartTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                    validityEndTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + hours * 3600)),
                    readyForRenewal=False,
                )
                rid = str(int(_digest(urn)[:16], 16))
            elif kind == "CertRequest":
                out["certRequestPem"] = "-----BEGIN CERTIFICATE REQUEST-----\nPREFLIGHT\n-----END CERTIFICATE REQUEST-----\n"
        elif pkg == "docker":
            rid = _digest(urn)
        return rid, out


_INVOKE_RESULTS = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda region: {
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/preflight",
        "userId": "AIDAPREFLIGHT",
        "id": "123456789012",
    },
    "aws:index/getRegion:getRegion": lambda region: {"name": region, "region": region, "id": region},
    "aws:index/getPartition:getPartition": lambda region: {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
}


class _InvokeMocks(Mocks):
    """Answers provider function calls (invokes): empty unless well known."""

    def __init__(self, region: str) -> None:
        self.region = region

    def call(self, args: MockCallArgs):
        make = _INVOKE_RESULTS.get(args.token)
        return (make(self.region) if make else {}), []

    def new_resource(self, args):  # only used for ReadResource (`.get()`)
        return f"{args.name}-id", dict(args.inputs)


# ---------------------------------------------------------------------------
# The monitor


class RecordingMonitor(MockMonitor):
    """A MockMonitor that records registrations the way the engine sees them."""

    def __init__(self, cfg: StackConfig) -> None:
        region = cfg.config.get("aws:region", "eu-central-1")
        super().__init__(_InvokeMocks(region))
        self.cfg = cfg
        self.region = region
        self.records: list[ResourceRecord] = []
        self._by_urn: dict[str, ResourceRecord] = {}
        self._lock = threading.Lock()
        self._table = _OutputTable()

    # The engine leaves the root stack out of the type chain of top-level
    # resources; MockMonitor puts it in. Nested parents contribute their whole
    # qualified type, not just the last element.
    def make_urn(self, parent: str, type_: str, name: str) -> str:
        qualified = type_
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != STACK_TYPE:
                qualified = f"{parent_type}${type_}"
        return f"urn:pulumi:{self.cfg.stack}::{self.cfg.project}::{qualified}::{name}"

    def _add(self, record: ResourceRecord) -> None:
        with self._lock:
            self.records.append(record)
            self._by_urn[record.urn] = record

    def _default_provider(self, pkg: str, version: str) -> ResourceRecord:
        """The provider the engine creates for resources that name none."""
        name = "default" if not version else "default_" + re.sub(r"[.\-+]", "_", version)
        urn = f"urn:pulumi:{self.cfg.stack}::{self.cfg.project}::{PROVIDER_PREFIX}{pkg}::{name}"
        with self._lock:
            existing = self._by_urn.get(urn)
        if existing is not None:
            return existing
        inputs: dict[str, Any] = {}
        prefix = f"{pkg}:"
        for key, value in self.cfg.config.items():
            if not key.startswith(prefix):
                continue
            prop = key[len(prefix) :]
            parsed: Any = value
            if value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    parsed = json.loads(value)
            inputs[prop] = {SIG_KEY: SECRET_SIG, "value": parsed} if key in self.cfg.secret_keys else parsed
        if version:
            inputs["version"] = version
        record = ResourceRecord(
            type=PROVIDER_PREFIX + pkg,
            name=name,
            urn=urn,
            parent="",
            custom=True,
            id=str(uuid.UUID(_digest(urn)[:32])),
            inputs=inputs,
            options=_options_dict(None),
        )
        self._add(record)
        return record

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            self._add(
                ResourceRecord(
                    type=STACK_TYPE, name=request.name, urn=urn, parent="", custom=False, id="",
                    inputs={}, options=_options_dict(request),
                )
            )
            return resource_pb2.RegisterResourceResponse(urn=urn)

        wire = struct_to_dict(request.object)
        raw = _downgrade_refs(wire)
        record = ResourceRecord(
            type=request.type,
            name=request.name,
            urn=urn,
            parent=request.parent,
            custom=bool(request.custom),
            id="",
            inputs=raw,
            options=_options_dict(request),
            # The SDK sends dependencies in the order of a set of objects
            # (memory addresses); sorted, the same program records the same.
            dependencies=sorted(request.dependencies),
            property_dependencies={k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items())},
        )

        if not request.custom:
            # Components have no provider-side state; their outputs come from
            # register_outputs, so the engine returns nothing but the URN.
            self._add(record)
            return resource_pb2.RegisterResourceResponse(urn=urn)

        region = self.region
        if request.type.startswith(PROVIDER_PREFIX):
            record.id = str(uuid.UUID(_digest(urn)[:32]))
            outputs: dict = {}
        else:
            provider_ref = request.provider
            if provider_ref:
                provider_urn = provider_ref.rsplit("::", 1)[0]  # "<urn>::<id>"
                record.provider_urn = provider_urn
                with self._lock:
                    provider = self._by_urn.get(provider_urn)
                if provider is not None and isinstance(provider.inputs.get("region"), str):
                    region = provider.inputs["region"]
            else:
                pkg = request.type.split(":")[0]
                provider = self._default_provider(pkg, request.version)
                record.provider_urn = provider.urn
            record.id, outputs = self._table.outputs(request.type, request.name, urn, raw, region)
        record.options["provider"] = (
            f"{record.provider_urn}::{self._by_urn[record.provider_urn].id}"
            if record.provider_urn in self._by_urn
            else request.provider
        )

        # What the program gets back: its inputs echoed (wire form, as the
        # engine echoes them), plus computed values. Built on the Struct
        # itself: a deserialize/serialize round trip through the SDK costs
        # more than the rest of the registration.
        obj = struct_pb2.Struct()
        obj.CopyFrom(request.object)
        for key, value in outputs.items():
            if key not in wire:
                obj[key] = wire[key] = value
        if "id" not in wire:
            obj["id"] = wire["id"] = record.id
        for key in request.additionalSecretOutputs:
            # The engine marks these secret; ones the mock cannot know get a placeholder.
            value = wire.get(key)
            if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
                continue
            if value is None:
                length = raw.get("length")
                value = _placeholder(urn, key, int(length) if isinstance(length, (int, float)) else 0)
            obj[key] = wire[key] = {SIG_KEY: SECRET_SIG, "value": value}
        state = wire
        self._add(record)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, record.id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=record.id, object=obj)


def _options_dict(request) -> dict:
    """Resource options as recorded (and later sent to the analyzer)."""
    if request is None:
        return {
            "protect": False, "ignoreChanges": [], "deleteBeforeReplace": False,
            "deleteBeforeReplaceDefined": False, "retainOnDelete": False, "dependencies": [],
            "additionalSecretOutputs": [], "aliases": [], "customTimeouts": {},
            "replaceOnChanges": [], "deletedWith": "", "provider": "",
        }
    aliases: list = list(request.aliasURNs)
    for alias in request.aliases:
        if alias.WhichOneof(alias.DESCRIPTOR.oneofs[0].name) == "urn":
            aliases.append(alias.urn)
        else:
            aliases.append(json_format.MessageToDict(alias.spec))
    timeouts = {}
    for key in ("create", "update", "delete"):
        value = getattr(request.customTimeouts, key)
        if value:
            timeouts[key] = value
    return {
        "protect": bool(request.protect),
        "ignoreChanges": list(request.ignoreChanges),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "deleteBeforeReplaceDefined": bool(request.deleteBeforeReplaceDefined),
        "retainOnDelete": bool(request.retainOnDelete),
        "dependencies": sorted(request.dependencies),
        "additionalSecretOutputs": list(request.additionalSecretOutputs),
        "aliases": aliases,
        "customTimeouts": timeouts,
        "replaceOnChanges": list(request.replaceOnChanges),
        "deletedWith": request.deletedWith,
        "provider": request.provider,
    }


class _CapturingEngine:
    """Stands in for the engine's Log service so program logs are captured, not printed."""

    def __init__(self, sink: io.StringIO) -> None:
        self.sink = sink
        self._lock = threading.Lock()

    def Log(self, request):
        if request.severity == 0:
            return  # the SDK's own debug chatter ("registering resource ...")
        severity = {0: "debug", 1: "info", 2: "warning", 3: "error"}.get(request.severity, "info")
        with self._lock:
            self.sink.write(f"[{severity}] {request.message}\n")


# ---------------------------------------------------------------------------
# Running programs


_PROTECTED_ROOTS = (os.path.dirname(os.path.abspath(__file__)),)


class _CachedSourceLoader(importlib.machinery.SourceFileLoader):
    """A program module's loader that keeps its bytecode in preflight's own cache directory.

    Only program modules go there: installed packages keep using the
    ``__pycache__`` their installer wrote (a global ``sys.pycache_prefix``
    would ignore those and recompile every package the program imports)."""

    cache_dir: Optional[str] = None
    # (source path, mtime, size) -> code object. Every stack imports the
    # program afresh, but a module's code is the same while its source is:
    # the module body still runs anew each time, only reading and
    # unmarshalling the bytecode (a twentieth of a stack) is spared.
    # Code objects are immutable, so sharing them shares no state.
    _code: dict[tuple, Any] = {}

    def get_code(self, fullname):
        if self.cache_dir is None:
            return super().get_code(fullname)
        source_path = self.get_filename(fullname)
        try:
            stats = self.path_stats(source_path)
            key = (source_path, stats["mtime"], stats.get("size"))
        except OSError:
            key = None
        code = self._code.get(key) if key is not None else None
        if code is not None:
            return code
        saved = sys.pycache_prefix, sys.dont_write_bytecode
        sys.pycache_prefix, sys.dont_write_bytecode = self.cache_dir, False
        try:
            code = super().get_code(fullname)
        finally:
            sys.pycache_prefix, sys.dont_write_bytecode = saved
        if key is not None and code is not None:
            self._code[key] = code
        return code


_PROGRAM_ROOTS: set[str] = set()


def _in_program(path: str) -> bool:
    path = os.path.abspath(path)
    if "site-packages" in path or any(path == p or path.startswith(p + os.sep) for p in _PROTECTED_ROOTS):
        return False
    return any(path == root or path.startswith(root + os.sep) for root in _PROGRAM_ROOTS)


def _program_path_hook(path: str):
    # Directories only: runpy asks the path hooks about the entry file too.
    if not _in_program(path) or not os.path.isdir(path):
        raise ImportError("not a program directory")
    loaders = [(_CachedSourceLoader if loader is importlib.machinery.SourceFileLoader else loader, suffixes)
               for loader, suffixes in _SUPPORTED_LOADERS]
    return importlib.machinery.FileFinder(path, *loaders)


_SUPPORTED_LOADERS = [
    (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
    (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
]


def _forget_program_finders() -> None:
    """Drop cached finders of program directories, so the next import asks the path hooks again."""
    for path in list(sys.path_importer_cache):
        if _in_program(path):
            del sys.path_importer_cache[path]


def _add_program_root(program_dir: str) -> None:
    root = os.path.abspath(program_dir)
    if root in _PROGRAM_ROOTS:
        return
    _PROGRAM_ROOTS.add(root)
    # Finders made before the root was known would keep the default loader.
    _forget_program_finders()


@contextlib.contextmanager
def program_bytecode_cache(cache_dir: str):
    """While active, program modules' bytecode is written to and read from ``cache_dir``."""
    sys.path_hooks.insert(0, _program_path_hook)
    _CachedSourceLoader.cache_dir = cache_dir
    _forget_program_finders()
    try:
        yield
    finally:
        _CachedSourceLoader.cache_dir = None
        _CachedSourceLoader._code.clear()
        with contextlib.suppress(ValueError):
            sys.path_hooks.remove(_program_path_hook)
        _forget_program_finders()


def _purge_program_modules(program_dir: str) -> dict:
    """Forget modules loaded from a program dir so the next run imports them afresh; return them.

    A component module that reads config at import time would otherwise keep the
    previous stack's values. Installed packages (a `.venv` inside the program
    dir) and preflight itself are kept: they are stack-independent and slow to import.
    """
    root = os.path.abspath(program_dir) + os.sep
    purged = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and _purgeable(path if os.path.isabs(path) else os.path.abspath(path), root):
            purged[name] = sys.modules.pop(name)
    return purged


@functools.lru_cache(maxsize=None)
def _purgeable(path: str, root: str) -> bool:
    # Cached: the same few thousand module paths are asked about before and
    # after every stack, and for an absolute path the answer depends on the
    # strings alone.
    path = os.path.normpath(path)
    if not path.startswith(root) or "site-packages" in path:
        return False
    return not any(path.startswith(p + os.sep) for p in _PROTECTED_ROOTS)


_COMPILED: dict[str, Any] = {}
_ABSENT = object()


def _exec_compiled_once(source, globals=None, locals=None, /, **kwargs):
    """``exec`` for the dataclasses module: each generated source text is compiled once per process.

    Every stack imports the program afresh, and each of its dataclasses has
    its ``__init__``, ``__repr__``, ``__eq__``... generated as source text and
    compiled: about a tenth of a stack's run, for text that is the same on
    every stack. The code object is immutable, so executing a cached one in
    the class's globals makes the same functions ``exec(text)`` would.
    """
    if globals is None:  # exec's own defaults: the caller's namespaces
        frame = sys._getframe(1)
        globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
    if isinstance(source, str):
        code = _COMPILED.get(source)
        if code is None:
            code = _COMPILED[source] = compile(source, "<string>", "exec")
        source = code
    return exec(source, globals, locals, **kwargs)


def _drop_debug(msg, resource=None, stream_id=None, ephemeral=None) -> None:
    """``pulumi.log.debug``: the engine here keeps no debug messages (nor does ``pulumi preview``
    without ``--debug``), so the SDK's few hundred per stack are not built and sent only to be
    dropped. With a resource, the SDK would even start a task per message to await its URN."""


def _memoized(function):
    """``function`` of one hashable argument, remembered for one run.

    For ``pulumi._types.unwrap_type``: the SDK unwraps the declared type of
    every input it serializes (about a thousand per stack, a few dozen
    distinct) through several ``typing`` introspections, a twentieth of a
    stack. The answer depends on the type hint alone; the memo dies with
    the run."""
    seen: dict = {}

    @functools.wraps(function)
    def memoized(arg):
        try:
            return seen[arg]
        except KeyError:
            result = seen[arg] = function(arg)
            return result
        except TypeError:  # unhashable
            return function(arg)

    return memoized


@contextlib.contextmanager
def _sdk_patches():
    """The replacements below, for the duration of one run (an in-process caller gets the originals back).

    Five SDK functions, and the ``exec`` the dataclasses module finds (a
    module global shadows the builtin; dataclasses has none of its own)."""
    targets = [(pulumi_resource_runtime, "_get_stack_trace", _no_stack_trace),
               (pulumi_stack, "wait_for_rpcs", _wait_for_rpcs),
               (pulumi_rpc, "transfer_properties", _transfer_properties),
               (dataclasses, "exec", _exec_compiled_once),
               (pulumi_log, "debug", _drop_debug),
               (pulumi_types, "unwrap_type", _memoized(pulumi_types.unwrap_type))]
    saved = [(module, name, getattr(module, name, _ABSENT)) for module, name, _ in targets]
    for module, name, replacement in targets:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module, name, original in saved:
            if original is _ABSENT:
                delattr(module, name)
            else:
                setattr(module, name, original)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, pulumi.RunError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"program called sys.exit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _no_stack_trace():
    # The SDK walks the Python stack for every registration to give the
    # engine source positions for its diagnostics. The analyzer protocol
    # carries none, and for a 60-resource stack that walk is about a tenth
    # of the run, so preflight skips it.
    return source_pb2.StackTrace()


async def _wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """The SDK's wait_for_rpcs with the same contract, in linear time.

    The SDK waits for outstanding outputs with FIRST_COMPLETED in a loop,
    which registers a callback on every pending task at every completion:
    quadratic in the number of outputs, a third of a 60-resource stack's
    run. Waiting with FIRST_EXCEPTION registers each task once and still
    stops at the first failure, whose exception is re-raised as before.
    """
    rpc_manager = pulumi_stack._get_rpc_manager()
    outputs = pulumi_stack.SETTINGS
    while True:
        while rpc_manager.rpcs:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    raise exn from rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        if await_all_outstanding_tasks:
            while True:
                with outputs.lock:
                    pending = list(outputs.outputs)
                    outputs.outputs.clear()
                if not pending:
                    break
                done, not_done = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    await task
                if not_done:
                    with outputs.lock:
                        outputs.outputs.update(not_done)
        if not rpc_manager.rpcs:
            break


def _resolve_output(resource, data: asyncio.Future, value: Any, is_known: bool, is_secret: bool,
                    deps: Optional[set], failed: Optional[Exception]) -> None:
    if failed is not None:
        data.set_exception(failed)
        return
    resources = set(deps) if deps else set()
    resources.add(resource)
    data.set_result(pulumi_output._OutputData(resources=resources, value=value, is_known=is_known,
                                              is_secret=is_secret))


def _transfer_properties(res, props, custom: bool) -> dict:
    """The SDK's transfer_properties with the same contract, one future per output.

    For every output property of a resource (dozens for an AWS bucket) the
    SDK makes four futures and a task that gathers them into the Output's
    data; that is a sixth of a stack's run. Here the Output's data is one
    future that the resolver completes with the same _OutputData (or the
    same exception), which is what awaiting the task would have produced.
    """
    resolvers = {}
    loop = asyncio.get_event_loop()
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # handled by the SDK itself
        data = loop.create_future()
        output = pulumi.Output.__new__(pulumi.Output)
        output._data = data
        output._track()
        resolvers[name] = functools.partial(_resolve_output, res, data)
        res.__dict__[name] = output
    return resolvers


def _thread_loop_state() -> tuple:
    """This thread's event loop as the policy holds it (loop, whether one was set), without creating one."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return getattr(local, "_loop", None), getattr(local, "_set_called", False)


def _restore_thread_loop_state(state: tuple) -> None:
    """Give the caller's thread back the loop it had: a test or tool that runs a stack
    in-process and uses asyncio afterwards must not find "no current event loop"."""
    loop, set_called = state
    asyncio.set_event_loop(loop if loop is None or not loop.is_closed() else None)
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    if local is not None and hasattr(local, "_set_called"):
        local._set_called = set_called


class _InlineExecutor(ThreadPoolExecutor):
    """The SDK's monitor calls, run at once on the event loop's thread.

    The SDK hands every call to its monitor (register a resource, invoke,
    register outputs) to the loop's default executor, made for a gRPC
    monitor in another process. Here the monitor is ``RecordingMonitor``,
    plain Python that never blocks, so a thread pool only added a thread
    switch, a wake-up of the loop and GIL contention per call (about a
    tenth of a stack). A ThreadPoolExecutor by type (the loop accepts
    nothing else) that never starts a thread; the result or exception is
    handed back in a finished future, as a pool thread would."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="preflight-inline")

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - as a pool thread would: onto the future
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def run_stack(cfg: StackConfig) -> StackRun:
    """Run one stack of a program under mocks with fresh runtime state."""
    start = time.perf_counter()
    monitor = RecordingMonitor(cfg)
    captured = io.StringIO()
    engine = _CapturingEngine(captured)
    result = StackRun(config=cfg, resources=[])

    def run() -> None:
        # Fresh settings, config and root stack, as the language host does per run.
        previous_loop = _thread_loop_state()
        pulumi_settings.ROOT.set(None)
        pulumi_settings.configure(
            pulumi_settings.Settings(
                project=cfg.project,
                stack=cfg.stack,
                monitor=monitor,
                engine=engine,
                dry_run=False,
                organization="organization",
                root_directory=cfg.program_dir,
            )
        )
        set_all_config(dict(cfg.config), list(cfg.secret_keys))
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_InlineExecutor())
        asyncio.set_event_loop(loop)
        # Errors of stray tasks are reported through run_in_stack; keep the loop quiet.
        loop.set_exception_handler(lambda _loop, _ctx: None)
        try:
            loop.run_until_complete(run_in_stack(lambda: runpy.run_path(cfg.main, run_name="__main__")))
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            # Outputs of this run that never settled belong to the closed loop.
            with pulumi_settings.SETTINGS.lock:
                pulumi_settings.SETTINGS.outputs.clear()
            _restore_thread_loop_state(previous_loop)

    old_cwd = os.getcwd()
    old_path0 = sys.path[0] if sys.path else None
    _add_program_root(cfg.program_dir)
    # The caller's own imports from the program dir (a test importing the
    # program's components) are put back afterwards, untouched.
    callers_modules = _purge_program_modules(cfg.program_dir)
    try:
        # As the language host does: cwd is the project directory, and the
        # entry point's directory comes first on the import path.
        os.chdir(cfg.program_dir)
        entry_dir = os.path.dirname(cfg.main)
        if sys.path:
            sys.path[0] = entry_dir
        else:
            sys.path.append(entry_dir)
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), _sdk_patches():
            contextvars.copy_context().run(run)
    except BaseException as exc:  # noqa: BLE001 - a failing program is a result, not a crash
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.error = _describe_error(exc)
        result.traceback = traceback.format_exc()
    finally:
        os.chdir(old_cwd)
        if old_path0 is not None:
            sys.path[0] = old_path0
        _purge_program_modules(cfg.program_dir)
        sys.modules.update(callers_modules)

    result.resources = list(monitor.records)
    result.output = captured.getvalue()
    result.elapsed_ms = (time.perf_counter() - start) * 1000
    return result


def resource_view(record: ResourceRecord, mask: str) -> dict:
    """A resource as written by --resources: wire names, secrets masked."""
    return {
        "type": record.type,
        "name": record.name,
        "urn": record.urn,
        "parent": record.parent,
        "inputs": _normalize_numbers(mask_secrets(record.inputs, mask)),
        "options": mask_secrets(record.options, mask),
    }


def parse_timeouts(options: dict) -> dict[str, float]:
    """customTimeouts strings to seconds, for the analyzer."""
    return {k: _parse_duration(v) for k, v in options.get("customTimeouts", {}).items()}
