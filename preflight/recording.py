"""The resource monitor that records every registration the way the engine would see it.

The Python SDK talks to the engine through a "resource monitor". Pulumi's
`MockMonitor` stands in for it in unit tests; `RecordingMonitor` extends it so
that every registration is kept with engine-shaped URNs, raw (wire) inputs that
still carry secret markers, resource options, and the provider the engine
would use (including the default providers it synthesizes).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2

from .mocks import InvokeMocks, Offline, computed_outputs, known_at_preview, placeholder
from .project import StackConfig
from .transforms import apply_invoke_transforms, apply_transforms
from .wire import SECRET_SIG, SIG_KEY, digest, downgrade_refs, mask_secrets, normalize_numbers, struct_to_dict

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
    inputs: dict[str, Any]
    """Wire form (protobuf Struct as a dict): secrets still wrapped in the secret signature object."""
    options: dict[str, Any]
    provider_urn: str = ""
    """URN of the provider resource that manages this resource ("" for components)."""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)



class RecordingMonitor(MockMonitor):
    """A MockMonitor that records registrations the way the engine sees them."""

    def __init__(self, cfg: StackConfig, offline: Offline | None = None) -> None:
        offline = offline or Offline()
        self.preview = offline.preview
        """A preview of a stack being created (computed outputs unknown); False: every computed
        output and id gets its mock value at once (``--mock-computed``)."""
        region = cfg.config.get("aws:region", "eu-central-1")
        self.answers = InvokeMocks(region, offline)
        super().__init__(self.answers)
        self.cfg = cfg
        self.region = region
        self.allow_unexpanded = offline.allow_unexpanded
        self.unexpanded: list[ResourceRecord] = []
        """Remote components (implemented in a provider plugin): nothing under them is known offline."""
        self._transform_tokens: dict[str, list[str]] = {}
        self._stack_transform_tokens: list[str] = []
        self._invoke_transform_tokens: list[str] = []
        self._parents: dict[str, str] = {}
        self.records: list[ResourceRecord] = []
        self._by_urn: dict[str, ResourceRecord] = {}
        self._lock = threading.Lock()

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
            id=str(uuid.UUID(digest(urn)[:32])),
            inputs=inputs,
            options=_options_dict(None),
        )
        self._add(record)
        return record

    def RegisterStackTransform(self, request: Any) -> Any:
        with self._lock:
            self._stack_transform_tokens.append(request.token)
        return super().RegisterStackTransform(request)  # type: ignore[no-untyped-call]

    def RegisterStackInvokeTransform(self, request: Any) -> Any:
        with self._lock:
            self._invoke_transform_tokens.append(request.token)
        return super().RegisterStackInvokeTransform(request)  # type: ignore[no-untyped-call]

    def Invoke(self, request: Any) -> Any:
        """An invoke after the stack's invoke transforms, as the engine calls the provider with it."""
        with self._lock:
            tokens = list(self._invoke_transform_tokens)
        if tokens and request.tok != "pulumi:pulumi:getResource":
            transformed = type(request)()
            transformed.CopyFrom(request)
            apply_invoke_transforms(transformed, tokens)
            request = transformed
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def _transform(self, request: Any, urn: str) -> Any:
        """The registration after its transforms, in the engine's order: its own, each parent's, the stack's."""
        own = [t.token for t in request.transforms]
        with self._lock:
            self._transform_tokens[urn] = own
            tokens = list(own)
            parent = request.parent
            while parent:
                tokens += self._transform_tokens.get(parent, [])
                parent = self._parents.get(parent, "")
            tokens += self._stack_transform_tokens
            self._parents[urn] = request.parent
        if not tokens:
            return request
        transformed = type(request)()
        transformed.CopyFrom(request)
        apply_transforms(transformed, tokens)
        return transformed

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type != STACK_TYPE:
            request = self._transform(request, urn)
        if request.type == STACK_TYPE:
            self._add(
                ResourceRecord(
                    type=STACK_TYPE, name=request.name, urn=urn, parent="", custom=False, id="",
                    inputs={}, options=_options_dict(request),
                )
            )
            return resource_pb2.RegisterResourceResponse(urn=urn)

        wire = struct_to_dict(request.object)
        raw = downgrade_refs(wire)
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

        if request.remote:
            # A multi-language component: the engine would ask its provider plugin to construct
            # it, and what that creates underneath is never registered here. Fail closed.
            with self._lock:
                self.unexpanded.append(record)
            if request.type not in self.allow_unexpanded:
                self.answers.fail(
                    f"{request.type} {request.name!r} is a component implemented in a provider plugin "
                    "(remote=True, a multi-language component): the resources it creates exist only when "
                    "the plugin runs at deploy time, so preflight cannot judge them; "
                    f"pass --allow-unexpanded {request.type} to accept it unchecked")
        if not request.custom:
            # Components have no provider-side state; their outputs come from
            # register_outputs, so the engine returns nothing but the URN.
            self._add(record)
            return resource_pb2.RegisterResourceResponse(urn=urn)

        region = self.region
        if request.type.startswith(PROVIDER_PREFIX):
            record.id = str(uuid.UUID(digest(urn)[:32]))
            outputs: dict[str, Any] = {}
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
            record.id, outputs = computed_outputs(request.type, request.name, urn, raw, region)
        record.options["provider"] = (
            f"{record.provider_urn}::{self._by_urn[record.provider_urn].id}"
            if record.provider_urn in self._by_urn
            else request.provider
        )

        # What the program gets back in a preview of a stack being created:
        # its inputs echoed (wire form, as the engine echoes them) and, of the
        # computed outputs, only those the provider fills in at plan time
        # (auto-names); every other computed output, and the id, is unknown
        # (left out: the SDK resolves a missing property of a preview as
        # unknown). With --mock-computed, every computed output and the id get
        # their mock value. Built on the Struct itself: a deserialize/serialize
        # round trip through the SDK costs more than the rest of the registration.
        obj = struct_pb2.Struct()
        obj.CopyFrom(request.object)
        for key, value in outputs.items():
            if key not in wire and (not self.preview or known_at_preview(request.type, key)):
                obj[key] = wire[key] = value
        if not self.preview and "id" not in wire:
            obj["id"] = wire["id"] = record.id
        for key in request.additionalSecretOutputs:
            # The engine marks these secret; at preview, one not known stays unknown,
            # otherwise one the mock cannot know gets a placeholder.
            value = wire.get(key)
            if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
                continue
            if value is None:
                if self.preview:
                    continue
                length = raw.get("length")
                value = placeholder(urn, key, int(length) if isinstance(length, (int, float)) else 0)
            obj[key] = wire[key] = {SIG_KEY: SECRET_SIG, "value": value}
        state = wire
        self._add(record)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, record.id, state)
        # The id of a resource not yet created is unknown at preview (the SDK reads "" as unknown).
        return resource_pb2.RegisterResourceResponse(urn=urn, id="" if self.preview else record.id, object=obj)


def _options_dict(request: Any) -> dict[str, Any]:
    """Resource options as recorded (and later sent to the analyzer)."""
    if request is None:
        return {
            "protect": False, "ignoreChanges": [], "deleteBeforeReplace": False,
            "deleteBeforeReplaceDefined": False, "retainOnDelete": False, "dependencies": [],
            "additionalSecretOutputs": [], "aliases": [], "customTimeouts": {},
            "replaceOnChanges": [], "deletedWith": "", "provider": "",
        }
    aliases: list[Any] = list(request.aliasURNs)
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


class CapturingEngine:
    """Stands in for the engine's Log service so program logs are captured, not printed."""

    def __init__(self, sink: io.StringIO) -> None:
        self.sink = sink
        self._lock = threading.Lock()

    def Log(self, request: Any) -> None:
        if request.severity == 0:
            return  # the SDK's own debug chatter ("registering resource ...")
        severity = {0: "debug", 1: "info", 2: "warning", 3: "error"}.get(request.severity, "info")
        with self._lock:
            self.sink.write(f"[{severity}] {request.message}\n")


def resource_view(record: ResourceRecord, mask: str) -> dict[str, Any]:
    """A resource as written by --resources: wire names, secrets masked."""
    return {
        "type": record.type,
        "name": record.name,
        "urn": record.urn,
        "parent": record.parent,
        "inputs": normalize_numbers(mask_secrets(record.inputs, mask)),
        "options": mask_secrets(record.options, mask),
    }

