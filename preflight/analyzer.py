"""Starting a CrossGuard policy pack and driving it over the analyzer gRPC protocol.

The pack runs as the Pulumi engine runs it (what the
`pulumi-analyzer-policy-python` plugin does): `python -u -m pulumi.policy
<engineAddress> <packDir>`; the pack's `PolicyPack(...)` starts a gRPC server
and prints its port on stdout. The one difference: preflight sets
``FAST_PATH_ENV`` in the pack's environment (unless told not to), which a pack
may take as leave to serve faster than its library does by itself.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

from . import PreflightError
from .recording import ResourceRecord
from .wire import parse_timeouts

ENFORCEMENT_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
ENFORCEMENT_VALUES = {name: value for value, name in ENFORCEMENT_NAMES.items()}

STARTUP_TIMEOUT_S = 30.0

FAST_PATH_ENV = "PREFLIGHT_FAST_PATH"
"""Set to "1" in the environment of a pack preflight starts with ``fast=True``; never by the engine."""


@dataclass
class PolicyInfo:
    name: str
    description: str
    enforcement: str
    controls: list[str]
    framework: str = ""
    specification: str = ""
    """The framework's text for the controls ("ACC-01: ... ACC-02: ...")."""
    kind: str = "resource"
    """"resource" or "stack"."""
    config_schema: dict[str, Any] = field(default_factory=dict)
    """JSON schema properties of the policy's config (name -> schema)."""


@dataclass
class Violation:
    policy: str
    controls: list[str]
    enforcement: str
    """"mandatory" or "advisory" (remediate is reported as mandatory, like the engine does)."""
    urn: str
    message: str
    not_judged: bool = False
    """The policy could not run: a value it reads is unknown at preview. The policy library
    reports this as advisory whatever the policy's level; ``enforcement`` is the policy's own
    configured level, so a mandatory policy that did not run is never a PASS."""


@dataclass
class Analysis:
    """What the pack said about one stack."""

    violations: list[Violation]
    judged: dict[str, list[str]]
    """Policy name -> URNs of the resources it judged ("" for the stack as a
    whole); a policy that declared itself not applicable is left out."""


@dataclass
class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine's Log service, so anything the pack logs through it is collected."""

    messages: list[str] = field(default_factory=list)

    def Log(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        self.messages.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.SetRootResourceResponse()


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def parse_policy_config(data: Any, policies: list[PolicyInfo], source: str) -> dict[str, dict[str, Any]]:
    """Validate a `--policy-pack-config` style mapping; return name -> {enforcementLevel?, props...}."""
    if not isinstance(data, dict):
        raise PreflightError(f"{source}: expected a JSON object mapping policy names to settings")
    known = {p.name for p in policies}
    result: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key != "all" and key not in known:
            raise PreflightError(f"{source}: unknown policy {key!r} (known: {', '.join(sorted(known))})")
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, dict):
            raise PreflightError(f"{source}: {key!r}: expected an enforcement level or an object")
        level = value.get("enforcementLevel")
        if level is not None and level not in ENFORCEMENT_VALUES:
            raise PreflightError(
                f"{source}: {key!r}: bad enforcement level {level!r} "
                f"(allowed: {', '.join(sorted(ENFORCEMENT_VALUES))})"
            )
        targets = [p for p in policies if key == "all" or p.name == key]
        for prop, prop_value in value.items():
            if prop == "enforcementLevel":
                continue
            schemas = [p.config_schema[prop] for p in targets if prop in p.config_schema]
            if not schemas:
                allowed = sorted({k for p in targets for k in p.config_schema})
                raise PreflightError(
                    f"{source}: {key}.{prop}: unknown setting "
                    f"(allowed: {', '.join(allowed) if allowed else 'none, only enforcementLevel'})")
            problem = _schema_problem(prop_value, schemas[0])
            if problem:
                raise PreflightError(f"{source}: {key}.{prop}: {problem}")
        result[key] = dict(value)
    return result


_JSON_TYPES = {
    "string": (str,), "boolean": (bool,), "array": (list,), "object": (dict,),
    "integer": (int,), "number": (int, float),
}


def _schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """What is wrong with a config value under a (small subset of) JSON schema, or None."""
    expected = schema.get("type")
    if expected in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool))
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            return f"expected {expected}, got {value!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"got {value!r}; allowed: {', '.join(map(str, schema['enum']))}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"got {value!r}; minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"got {value!r}; maximum {schema['maximum']}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"needs at least {schema['minItems']} item(s)"
        for i, item in enumerate(value):
            problem = _schema_problem(item, schema.get("items") or {})
            if problem:
                return f"item {i}: {problem}"
    return None


class PolicyPackProcess:
    """A running policy pack and a client for it. Use as a context manager."""

    def __init__(self, pack_dir: str, fast: bool = True) -> None:
        self.pack_dir = os.path.abspath(pack_dir)
        self.fast = fast
        """Whether the pack is offered the fast path (``FAST_PATH_ENV``)."""
        if not os.path.isdir(self.pack_dir):
            raise PreflightError(f"policy pack {self.pack_dir}: not a directory")
        self.proc: subprocess.Popen[bytes] | None = None
        self.exited_early = False
        """True when the pack process ended before we stopped it (it crashed)."""
        self.engine = _Engine()
        self._engine_server: grpc.Server | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the pack's stderr while it lives; closed in stop()
        self.channel: grpc.Channel | None = None
        self.stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self.info: analyzer_pb2.AnalyzerInfo | None = None
        self.policies: list[PolicyInfo] = []
        self._controls: dict[str, list[str]] = {}
        self._levels: dict[str, str] = {}
        """Policy name -> configured enforcement ("mandatory", "advisory", "disabled")."""
        self.startup_notes: list[str] = []
        """What the pack wrote on stderr while it started (e.g. that it declined the fast path)."""

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> PolicyPackProcess:
        try:
            self.launch()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def launch(self) -> None:
        """Start the pack process; `connect` finishes the start-up.

        Split in two so that the caller can run a program while the pack boots.
        """
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()
        self._engine_address = f"127.0.0.1:{engine_port}"

        env = dict(os.environ)
        env.pop(FAST_PATH_ENV, None)
        if self.fast:
            env[FAST_PATH_ENV] = "1"
        # The engine runs packs from their own directory; do the same.
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.policy", self._engine_address, self.pack_dir],
            cwd=self.pack_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def connect(self) -> None:
        """Wait for the pack's port, then handshake and read its policies (once)."""
        if self.stub is not None:
            return
        engine_address = self._engine_address
        port = self._read_port()
        # Everything the pack's start-up wrote came before its port.
        self.startup_notes = self._stderr_text().splitlines()
        # Same message-size limits as the SDK: AnalyzeStack carries every resource.
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_GRPC_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=STARTUP_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            raise PreflightError(f"policy pack {self.pack_dir}: port {port} did not accept connections") from None
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        self.stub.GetPluginInfo(empty_pb2.Empty())
        try:
            self.stub.Handshake(
                analyzer_pb2.AnalyzerHandshakeRequest(
                    engine_address=engine_address, root_directory=self.pack_dir, program_directory=self.pack_dir
                )
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        self.info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        for p in self.info.policies:
            controls = [c.strip() for c in p.framework.reference.split(",") if c.strip()]
            self._controls[p.name] = controls
            self.policies.append(
                PolicyInfo(
                    name=p.name,
                    description=p.description,
                    enforcement=ENFORCEMENT_NAMES.get(p.enforcementLevel, "advisory"),
                    controls=controls,
                    framework=p.framework.name,
                    specification=p.framework.specification,
                    kind="stack" if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK else "resource",
                    config_schema=json_format.MessageToDict(p.configSchema.properties),
                )
            )

    def _read_port(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PreflightError(
                        f"policy pack {self.pack_dir}: no port within {STARTUP_TIMEOUT_S:.0f} s\n{self._stderr_text()}"
                    )
                if not sel.select(timeout=remaining):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.proc.wait(timeout=5)
                    raise PreflightError(
                        f"policy pack {self.pack_dir} exited with code {self.proc.returncode} before it started:\n"
                        f"{self._stderr_text()}"
                    )
                buf += chunk
        line = buf.split(b"\n", 1)[0].strip()
        try:
            return int(line)
        except ValueError:
            raise PreflightError(
                f"policy pack {self.pack_dir}: expected a port on stdout, got {line[:200]!r}\n{self._stderr_text()}"
            ) from None

    def failure(self, error: grpc.RpcError) -> PreflightError:
        """A readable error for a failed call, with the pack's stderr when it died."""
        exited = self.exited_early
        if self.proc is not None:
            # The call may fail a moment before the process is reaped.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
            exited = self.proc.poll() is not None
        detail = error.details() if hasattr(error, "details") else str(error)
        text = f"policy pack {self.pack_dir}: {'process exited; ' if exited else ''}{detail}"
        stderr = self._stderr_text()
        return PreflightError(f"{text}\n{stderr[-4000:]}" if stderr else text)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is not None:
            self.exited_early = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # by PID: this handle is the process we started
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        if self._engine_server is not None:
            self._engine_server.stop(0)
            self._engine_server = None

    # -- protocol ----------------------------------------------------------

    def configure(self, overrides: dict[str, dict[str, Any]]) -> None:
        """Send the policy config: initial config of the pack, then the user's overrides."""
        assert self.stub is not None and self.info is not None
        levels = {p.name: ENFORCEMENT_VALUES[p.enforcement] for p in self.policies}
        props: dict[str, dict[str, Any]] = {p.name: {} for p in self.policies}
        for name, cfg in self.info.initialConfig.items():
            targets = list(levels) if name == "all" else [name] if name in levels else []
            for target in targets:
                # The enum has no presence; ADVISORY (0) is indistinguishable from "unset".
                if cfg.enforcementLevel != analyzer_pb2.ADVISORY:
                    levels[target] = cfg.enforcementLevel
                props[target].update(json_format.MessageToDict(cfg.properties))
        for key, value in overrides.items():
            targets = list(levels) if key == "all" else [key]
            for name in targets:
                if "enforcementLevel" in value:
                    levels[name] = ENFORCEMENT_VALUES[value["enforcementLevel"]]
                props[name].update({k: v for k, v in value.items() if k != "enforcementLevel"})
        self._levels = {name: ENFORCEMENT_NAMES.get(level, "advisory") for name, level in levels.items()}
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name in levels:
            entry = request.policyConfig[name]
            entry.enforcementLevel = levels[name]
            entry.properties.update(props[name])
        self.stub.Configure(request)

    def configure_stack(self, project: str, stack: str, config: dict[str, str], secret_keys: list[str]) -> None:
        assert self.stub is not None
        request = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack, project=project, organization="organization", dry_run=True,
            config_secret_keys=secret_keys,
        )
        for key, value in config.items():
            request.config[key] = value
        try:
            self.stub.ConfigureStack(request)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise

    def _options(self, record: ResourceRecord) -> analyzer_pb2.AnalyzerResourceOptions:
        o = record.options
        opts = analyzer_pb2.AnalyzerResourceOptions(
            protect=o["protect"],
            ignoreChanges=o["ignoreChanges"],
            deleteBeforeReplace=o["deleteBeforeReplace"],
            deleteBeforeReplaceDefined=o["deleteBeforeReplaceDefined"],
            additionalSecretOutputs=o["additionalSecretOutputs"],
            aliases=[a for a in o["aliases"] if isinstance(a, str)],
            parent=record.parent,
        )
        timeouts = parse_timeouts(o)
        if timeouts:
            opts.customTimeouts.create = timeouts.get("create", 0.0)
            opts.customTimeouts.update = timeouts.get("update", 0.0)
            opts.customTimeouts.delete = timeouts.get("delete", 0.0)
        return opts

    def _provider(self, record: ResourceRecord, by_urn: dict[str, ResourceRecord]) -> Any:
        provider = by_urn.get(record.provider_urn) if record.provider_urn else None
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
        )

    def requests(self, resources: list[ResourceRecord]
                 ) -> tuple[list[analyzer_pb2.AnalyzeRequest], analyzer_pb2.AnalyzeStackRequest]:
        """What a preview sends the pack: one AnalyzeRequest per resource, then the whole stack."""
        by_urn = {r.urn: r for r in resources}
        providers: dict[str, Any] = {}
        per_resource = []
        stack_resources = []
        for record in resources:
            props = _struct(record.inputs)
            opts = self._options(record)
            if record.provider_urn not in providers:
                providers[record.provider_urn] = self._provider(record, by_urn)
            provider = providers[record.provider_urn]
            request = analyzer_pb2.AnalyzeRequest(
                type=record.type, properties=props, urn=record.urn, name=record.name, options=opts
            )
            item = analyzer_pb2.AnalyzerResource(
                type=record.type, properties=props, urn=record.urn, name=record.name, options=opts,
                parent=record.parent, dependencies=record.dependencies,
            )
            if provider is not None:
                request.provider.CopyFrom(provider)
                item.provider.CopyFrom(provider)
            for key, urns in record.property_dependencies.items():
                item.propertyDependencies[key].urns.extend(urns)
            per_resource.append(request)
            stack_resources.append(item)
        return per_resource, analyzer_pb2.AnalyzeStackRequest(resources=stack_resources)

    def analyze_stack(self, resources: list[ResourceRecord]) -> Analysis:
        """Analyze every resource, then the stack as a whole, as a preview does.

        The per-resource calls are pipelined (sent without waiting for the
        previous answer), so the pack works while this process reads the
        answers, in resource order."""
        assert self.stub is not None
        per_resource, whole_stack = self.requests(resources)
        pending = [self.stub.Analyze.future(request) for request in per_resource]
        violations: list[Violation] = []
        # policy -> URNs it judged: every analyzed resource the policy did
        # not declare itself not applicable to ("" stands for the stack).
        judged: dict[str, list[str]] = {p.name: [] for p in self.policies}
        resource_policies = [p.name for p in self.policies if p.kind == "resource"]
        for record, future in zip(resources, pending, strict=False):
            response = future.result()
            found = self._violations(response, record.urn)
            violations.extend(found)
            skipped = {n.policy_name for n in response.not_applicable} | {v.policy for v in found if v.not_judged}
            for name in resource_policies:
                if name not in skipped:
                    judged[name].append(record.urn)
        # As the engine does: the stack is analyzed after every resource.
        response = self.stub.AnalyzeStack(whole_stack)
        found = self._violations(response, "")
        violations.extend(found)
        skipped = {n.policy_name for n in response.not_applicable} | {v.policy for v in found if v.not_judged}
        for policy in self.policies:
            if policy.kind == "stack" and policy.name not in skipped:
                judged[policy.name].append("")
        return Analysis(violations=violations, judged=judged)

    def _violations(self, response: Any, default_urn: str) -> list[Violation]:
        out = []
        for d in response.diagnostics:
            level = ENFORCEMENT_NAMES.get(d.enforcementLevel, "advisory")
            not_judged = _could_not_run(d.policyName, d.message)
            if not_judged:
                level = self._levels.get(d.policyName, level)
            if level == "disabled":
                continue
            out.append(
                Violation(
                    policy=d.policyName,
                    controls=list(self._controls.get(d.policyName, [])),
                    enforcement="mandatory" if level in ("mandatory", "remediate") else "advisory",
                    urn=d.urn or default_urn,
                    message=d.message,
                    not_judged=not_judged,
                )
            )
        return out


def _could_not_run(policy: str, message: str) -> bool:
    """Whether a diagnostic is the policy library's "can't run policy ... during preview" (an unknown value)."""
    return message.startswith(f"can't run policy '{policy}' from policy pack ") and " during preview: " in message
