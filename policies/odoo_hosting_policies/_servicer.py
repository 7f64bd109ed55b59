"""The pack's analyzer servicer: pulumi_policy's, with per-resource work done once.

pulumi_policy's ``Analyze`` converts the resource's properties (protobuf to
dict, deserialize, wrap in the unknown-checking proxy) and its provider's
properties again for every policy, then calls the policy. With 35 policies
that is 35 conversions per resource, for a policy that mostly answers "not
applicable" after one look at the type. This servicer

- converts the properties, options and provider once per resource, lazily,
  and hands the same read-only values to every policy that judges it;
- answers "not applicable" for a policy built with ``applies_to`` whose types
  exclude the resource, without calling it (the reason is the one the policy
  itself would give, see ``_meta._only_for``);
- converts every resource once per ``AnalyzeStack``, not once per stack policy;
- notes on each stack resource which of its top-level inputs the engine sent
  marked secret (:func:`secret_inputs`): the library's conversion drops the
  marks, so under its servicer a policy cannot tell.

Everything else (enforcement levels, config, diagnostics, their order, the
unknown-value advisory) is the library's own code path; the responses are
identical (``tests/policy/test_servicer.py`` compares them on real stacks),
but for what a policy reads from :func:`secret_inputs` (under the library's
servicer it is always empty).
``install()`` makes ``PolicyPack(...)`` serve with this class.

It reads pulumi_policy's private attributes, so the pack installs it only
where that was checked: when preflight started the pack (``FAST_PATH_ENV``;
``pulumi preview`` never sets it, and serves with the library as published)
and the installed pulumi_policy is ``CHECKED_AGAINST`` with the private names
this class uses (:func:`fast_servicer_enabled`; on a mismatch it says so on
stderr and the library's servicer answers).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, TextIO, cast

from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import policy as _lib
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties
from pulumi_policy.policy import (
    EnforcementLevel,
    PolicyProviderResource,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

if TYPE_CHECKING:
    _LibraryServicer = _lib._PolicyAnalyzerServicer
else:
    # The production pack imports this module (secret_inputs, APPLIES_TO_ATTR) under any
    # pulumi_policy; one without the private class must still load (and serve stock).
    _LibraryServicer = getattr(_lib, "_PolicyAnalyzerServicer", object)

FAST_PATH_ENV = "PREFLIGHT_FAST_PATH"
"""Set to "1" by preflight (its ``analyzer.FAST_PATH_ENV``) in the environment of a pack it starts."""
CHECKED_AGAINST = "1.21.0"
"""The pulumi-policy version this servicer was checked against (as pinned in requirements.lock)."""
_PRIVATE_NAMES = {
    "class": ("_configure_runtime_settings", "_get_enforcement_level", "_create_report_violation",
              "_get_resource_options", "_get_policy_config", "_map_enforcement_level", "Configure"),
    "fields": ("_PolicyAnalyzerServicer__policies", "_PolicyAnalyzerServicer__stack_tags",
               "_PolicyAnalyzerServicer__policy_pack_name", "_PolicyAnalyzerServicer__policy_pack_version"),
    "module": ("_PolicyAnalyzerServicer", "_NotApplicableError"),
}
APPLIES_TO_ATTR = "_odoo_hosting_applies_to"
"""Set by ``_meta.resource_policy``: (predicate on the type token, not-applicable reason)."""
SECRET_INPUTS_ATTR = "_odoo_hosting_secret_inputs"


def secret_inputs(resource: Any) -> frozenset[str]:
    """The top-level inputs of a stack resource that the engine sent marked secret (empty when
    the servicer did not record them: pulumi_policy's own drops the marks)."""
    marked: frozenset[str] = getattr(resource, SECRET_INPUTS_ATTR, frozenset())
    return marked


def _secret_keys(struct: Any) -> frozenset[str]:
    secret = []
    for key, value in struct.fields.items():
        if value.WhichOneof("kind") == "struct_value":
            sig = value.struct_value.fields.get(SPECIAL_SIG_KEY)
            if sig is not None and sig.string_value == SPECIAL_SECRET_SIG:
                secret.append(key)
    return frozenset(secret)


def _plain(value: Any) -> Any:
    """A protobuf Value as plain Python, as ``json_format.MessageToDict`` gives it, several times faster."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return {k: _plain(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_plain(v) for v in value.list_value.values]
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _props(struct: Any) -> Any:
    return unknown_checking_proxy(deserialize_properties({k: _plain(v) for k, v in struct.fields.items()}))


class _Lazy:
    """A value computed on first use, then kept."""

    __slots__ = ("_make", "_value", "_done")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make, self._value, self._done = make, None, False

    def get(self) -> Any:
        if not self._done:
            self._value, self._done = self._make(), True
        return self._value


class FastAnalyzerServicer(_LibraryServicer):
    """pulumi_policy's servicer with the per-resource conversions shared (see the module doc)."""

    def _pack_name_version(self) -> tuple[str, str]:
        return (self._PolicyAnalyzerServicer__policy_pack_name,  # type: ignore[attr-defined]
                self._PolicyAnalyzerServicer__policy_pack_version)  # type: ignore[attr-defined]

    def _unknown_diagnostic(self, policy: Any, error: UnknownValueError) -> proto.AnalyzeDiagnostic:
        name, version = self._pack_name_version()
        return proto.AnalyzeDiagnostic(
            policyName=policy.name,
            policyPackName=name,
            policyPackVersion=version,
            message=(f"can't run policy '{policy.name}' from policy pack "
                     f"'{name}@v{version}' during preview: {error.message}"),
            urn="",
            description=policy.description,
            enforcementLevel=self._map_enforcement_level(EnforcementLevel.ADVISORY),
        )

    def _run(self, policy: Any, args: Any, report_violation: Any, response: proto.AnalyzeResponse) -> None:
        try:
            result = policy.validate(args, report_violation)
            if isawaitable(result):
                loop = asyncio.new_event_loop()
                loop.run_until_complete(asyncio.Task(cast(Coroutine[Any, Any, Any], result), loop=loop))
                loop.close()
        except UnknownValueError as e:
            response.diagnostics.append(self._unknown_diagnostic(policy, e))
        except _lib._NotApplicableError as e:
            response.not_applicable.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=e.reason or ""))

    def _get_provider_resource(self, request: Any) -> PolicyProviderResource | None:
        if not request.HasField("provider"):
            return None
        prov = request.provider
        return PolicyProviderResource(prov.type, _props(prov.properties), prov.urn, prov.name)

    def Configure(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        self._plans: dict[str, list[tuple[str, Any, Any]]] = {}  # enforcement levels may have changed
        return super().Configure(request, context)  # type: ignore[no-untyped-call]

    def _plan(self, type_: str) -> list[tuple[str, Any, Any]]:
        """What ``Analyze`` does with each policy for a resource of this type, in policy order.

        ("skip", name, reason) answers "not applicable" without calling the
        policy; ("run", policy, level) calls it. Depends only on the type and
        the enforcement levels, so it is made once per type (again after Configure)."""
        plans: dict[str, list[tuple[str, Any, Any]]] = self.__dict__.setdefault("_plans", {})
        plan = plans.get(type_)
        if plan is None:
            plan = []
            for policy in self._PolicyAnalyzerServicer__policies:  # type: ignore[attr-defined]
                enforcement_level = self._get_enforcement_level(policy)
                if enforcement_level == EnforcementLevel.DISABLED or not isinstance(policy, ResourceValidationPolicy):
                    continue
                if not policy.has_validation():
                    plan.append(("skip", policy.name, "Policy does not implement validate"))
                    continue
                applies_to = getattr(policy, APPLIES_TO_ATTR, None)
                if applies_to is not None and not applies_to[0](type_):
                    plan.append(("skip", policy.name, applies_to[1]))
                    continue
                if enforcement_level == EnforcementLevel.REMEDIATE:
                    enforcement_level = EnforcementLevel.MANDATORY
                plan.append(("run", policy, enforcement_level))
            plans[type_] = plan
        return plan

    def Analyze(self, request: proto.AnalyzeRequest, _context: Any) -> proto.AnalyzeResponse:  # noqa: N802
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        props = _Lazy(lambda: _props(request.properties))
        opts = _Lazy(lambda: self._get_resource_options(request))
        provider = _Lazy(lambda: self._get_provider_resource(request))
        stack_tags = self._PolicyAnalyzerServicer__stack_tags  # type: ignore[attr-defined]
        not_applicable = response.not_applicable

        for action, policy, detail in self._plan(request.type):
            if action == "skip":
                # add() builds the entry in place; append() would copy a built one.
                not_applicable.add(policy_name=policy, reason=detail)
                continue
            report_violation = self._create_report_violation(
                response, policy.name, policy.description, detail, policy.severity)
            args = ResourceValidationArgs(request.type, props.get(), request.urn, request.name, opts.get(),
                                          provider.get(), self._get_policy_config(policy.name), stack_tags)
            self._run(policy, args, report_violation, response)
        return response

    def _stack_resources(self, request: proto.AnalyzeStackRequest) -> list[PolicyResource]:
        """Every resource of the request, linked to its parent and dependencies (as the library does)."""
        resources: list[PolicyResource] = []
        links = []
        by_urn: dict[str, PolicyResource] = {}
        # provider URN -> (its message, converted); most resources share one
        providers: dict[str, tuple[Any, PolicyProviderResource | None]] = {}
        for r in request.resources:
            provider = None
            if r.HasField("provider"):
                seen = providers.get(r.provider.urn)
                if seen is not None and seen[0] == r.provider:
                    provider = seen[1]
                else:
                    provider = self._get_provider_resource(r)
                    providers[r.provider.urn] = (r.provider, provider)
            resource = PolicyResource(r.type, _props(r.properties), r.urn, r.name, self._get_resource_options(r),
                                      provider, None, [], {})
            setattr(resource, SECRET_INPUTS_ATTR, _secret_keys(r.properties))
            resources.append(resource)
            by_urn[r.urn] = resource
            links.append((resource, r.parent, list(r.dependencies),
                          {k: list(v.urns) for k, v in r.propertyDependencies.items()}))
        for resource, parent, dependencies, property_dependencies in links:
            if parent is not None and parent in by_urn:
                resource.parent = by_urn[parent]
            resource.dependencies.extend(by_urn[d] for d in dependencies if d in by_urn)
            for key, urns in property_dependencies.items():
                resource.property_dependencies[key] = [by_urn[d] for d in urns if d in by_urn]
        return resources

    def AnalyzeStack(self, request: proto.AnalyzeStackRequest, _context: Any  # noqa: N802
                     ) -> proto.AnalyzeResponse:
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        resources: list[PolicyResource] | None = None
        stack_tags = self._PolicyAnalyzerServicer__stack_tags  # type: ignore[attr-defined]
        for policy in self._PolicyAnalyzerServicer__policies:  # type: ignore[attr-defined]
            enforcement_level = self._get_enforcement_level(policy)
            if enforcement_level == EnforcementLevel.DISABLED or not isinstance(policy, StackValidationPolicy):
                continue
            if enforcement_level == EnforcementLevel.REMEDIATE:
                enforcement_level = EnforcementLevel.MANDATORY
            report_violation = self._create_report_violation(
                response, policy.name, policy.description, enforcement_level, policy.severity)
            if resources is None:
                resources = self._stack_resources(request)
            # A fresh list per policy, as the library gives; the resources are shared.
            args = StackValidationArgs(list(resources), self._get_policy_config(policy.name), stack_tags)
            self._run(policy, args, report_violation, response)
        return response


def _missing_private_names() -> list[str]:
    library = getattr(_lib, "_PolicyAnalyzerServicer", None)
    missing = [name for name in _PRIVATE_NAMES["module"] if not hasattr(_lib, name)]
    if library is not None:
        missing += [name for name in _PRIVATE_NAMES["class"] if not hasattr(library, name)]
        fields = getattr(library, "__annotations__", {})
        missing += [name for name in _PRIVATE_NAMES["fields"] if name not in fields]
    return missing


def fast_servicer_enabled(environ: Mapping[str, str] = os.environ, stderr: TextIO | None = None) -> bool:
    """Whether the pack may serve with :class:`FastAnalyzerServicer`: preflight asked for it, and
    the installed pulumi_policy is the one it was checked against (if not, says so on ``stderr``)."""
    if environ.get(FAST_PATH_ENV) != "1":
        return False
    installed = importlib.metadata.version("pulumi-policy")
    if installed != CHECKED_AGAINST:
        problem = f"pulumi-policy {installed} is installed, the fast servicer was checked against {CHECKED_AGAINST}"
    else:
        missing = _missing_private_names()
        problem = f"pulumi_policy lacks {', '.join(missing)}" if missing else ""
    if problem:
        (stderr or sys.stderr).write(
            f"odoo-hosting pack: fast servicer off, serving with pulumi_policy's own: {problem}\n")
        return False
    return True


def install() -> None:
    """Make ``pulumi_policy.PolicyPack`` serve with :class:`FastAnalyzerServicer` (call before ``PolicyPack``)."""
    _lib._PolicyAnalyzerServicer = FastAnalyzerServicer  # type: ignore[misc]
