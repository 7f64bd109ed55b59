"""Faster replacements for a few Pulumi SDK internals, applied for the duration of one run.

Each replacement keeps the contract of the SDK function it stands in for
(``tests/preflight/test_engine_internals.py`` compares them); together they
make a stack's run several times faster. They are preflight's "fast path",
and they are used only where they were checked: ``fast_path_problem`` says
why not when the installed pulumi (or Python) is another version than
``CHECKED_AGAINST``, when an SDK function that ``_wait_for_rpcs`` or
``_transfer_properties`` copies is not the source they were copied from, or
when an internal they use is missing. preflight then runs the SDK as
published (``--no-fast-path`` does so on request); it never runs a
replacement it cannot vouch for, which for ``_wait_for_rpcs`` could stop
waiting early and record fewer resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import CodeType
from typing import Any, ParamSpec, TypeVar

import pulumi
from pulumi import _types as pulumi_types
from pulumi import log as pulumi_log
from pulumi import output as pulumi_output
from pulumi.runtime import resource as pulumi_resource_runtime
from pulumi.runtime import rpc as pulumi_rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.proto import source_pb2

CHECKED_AGAINST = {"pulumi": "3.272.0", "python": "3.11"}
"""The versions the replacements were checked against: pulumi as pinned in requirements.lock (a
test fails when the lock moves on without this), Python because of the dataclasses ``exec``."""

COPIED_FROM = (
    # What the two modified copies below repeat or rely on: its name, how to find it, and the
    # first 16 hex digits of the sha256 of its source when they were checked against it.
    ("pulumi.runtime.stack.wait_for_rpcs", lambda: pulumi_stack.wait_for_rpcs, "c0f9027f85ad0925"),
    ("pulumi.Output._track", lambda: pulumi.Output._track, "72569ad70fd52b20"),
    ("pulumi.runtime.rpc.transfer_properties", lambda: pulumi_rpc.transfer_properties, "0e7c02ffa04ff20b"),
    ("pulumi.Output.__init__", lambda: pulumi.Output.__init__, "f883e4f64c918cfb"),
)


def installed_versions() -> dict[str, str]:
    """The versions ``CHECKED_AGAINST`` names, as installed here."""
    return {"pulumi": importlib.metadata.version("pulumi"), "python": "{}.{}".format(*sys.version_info[:2])}


def _missing_internals() -> list[str]:
    """The SDK internals the replacements read or replace that this SDK does not have."""
    try:
        from pulumi.runtime.rpc_manager import RPCManager

        rpc_manager: Any = RPCManager()  # type: ignore[no-untyped-call]
    except (ImportError, TypeError):
        rpc_manager = None
    wanted = [
        (pulumi_settings, ("_get_rpc_manager", "SETTINGS")),
        (type(pulumi_settings.SETTINGS) if hasattr(pulumi_settings, "SETTINGS") else None, ("lock", "outputs")),
        (pulumi_stack, ("wait_for_rpcs",)),
        (rpc_manager, ("rpcs", "unhandled_exception", "exception_traceback")),
        (pulumi.Output, ("_track",)),
        (pulumi_output, ("_OutputData",)),
        (pulumi_rpc, ("transfer_properties",)),
        (pulumi_resource_runtime, ("_get_stack_trace",)),
        (pulumi_log, ("debug",)),
        (pulumi_types, ("unwrap_type",)),
    ]
    missing = [name for owner, names in wanted for name in names if owner is None or not hasattr(owner, name)]
    if hasattr(dataclasses, "exec"):  # its own: the replacement would shadow it
        missing.append("dataclasses without an exec of its own")
    output_data = getattr(pulumi_output, "_OutputData", None)
    wanted_fields = ["resources", "value", "is_known", "is_secret"]
    if output_data is not None and list(getattr(output_data, "__dataclass_fields__", {})) != wanted_fields:
        missing.append("_OutputData(" + ", ".join(wanted_fields) + ")")
    return missing


def _source_digest(get: Callable[[], Any]) -> str:
    try:
        return hashlib.sha256(inspect.getsource(get()).encode()).hexdigest()[:16]
    except (AttributeError, OSError, TypeError):
        return "(not found)"


@functools.cache
def fast_path_problem() -> str | None:
    """Why preflight must run the SDK as published here, or None when the replacements apply.

    Checked once per process (a few milliseconds, before workers are forked)."""
    seen = installed_versions()
    changed = [f"{name} {seen[name]} is installed, the fast path was checked against {version}"
               for name, version in CHECKED_AGAINST.items() if seen[name] != version]
    if changed:
        return "; ".join(changed)
    missing = _missing_internals()
    if missing:
        return "the installed pulumi lacks " + ", ".join(missing)
    drifted = [name for name, get, digest in COPIED_FROM if _source_digest(get) != digest]
    if drifted:
        return "the installed pulumi's " + ", ".join(drifted) + " differ from what the fast path copies"
    return None


_COMPILED: dict[str, CodeType] = {}
_ABSENT = object()
T = TypeVar("T")
P = ParamSpec("P")


def _exec_compiled_once(source: str | CodeType, globals: dict[str, Any] | None = None,
                        locals: Mapping[str, object] | None = None, /, **kwargs: Any) -> None:
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


def _drop_debug(msg: str, resource: Any = None, stream_id: int | None = None, ephemeral: bool | None = None) -> None:
    """``pulumi.log.debug``: the engine here keeps no debug messages (nor does ``pulumi preview``
    without ``--debug``), so the SDK's few hundred per stack are not built and sent only to be
    dropped. With a resource, the SDK would even start a task per message to await its URN."""


def _memoized(function: Callable[[Any], T]) -> Callable[[Any], T]:
    """``function`` of one hashable argument, remembered for one run.

    For ``pulumi._types.unwrap_type``: the SDK unwraps the declared type of
    every input it serializes (about a thousand per stack, a few dozen
    distinct) through several ``typing`` introspections, a twentieth of a
    stack. The answer depends on the type hint alone; the memo dies with
    the run."""
    seen: dict[Any, T] = {}

    @functools.wraps(function)
    def memoized(arg: Any) -> T:
        try:
            return seen[arg]
        except KeyError:
            result = seen[arg] = function(arg)
            return result
        except TypeError:  # unhashable
            return function(arg)

    return memoized


@contextlib.contextmanager
def patched_sdk() -> Iterator[None]:
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


def _no_stack_trace() -> source_pb2.StackTrace:
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
    rpc_manager = pulumi_settings._get_rpc_manager()
    outputs = pulumi_settings.SETTINGS
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


def _resolve_output(resource: Any, data: asyncio.Future[Any], value: Any, is_known: bool, is_secret: bool,
                    deps: set[Any] | None, failed: Exception | None) -> None:
    if failed is not None:
        data.set_exception(failed)
        return
    resources = set(deps) if deps else set()
    resources.add(resource)
    data.set_result(pulumi_output._OutputData(resources=resources, value=value, is_known=is_known,
                                              is_secret=is_secret))


def _transfer_properties(res: Any, props: Iterable[str], custom: bool) -> dict[str, Callable[..., None]]:
    """The SDK's transfer_properties with the same contract, one future per output.

    For every output property of a resource (dozens for an AWS bucket) the
    SDK makes four futures and a task that gathers them into the Output's
    data; that is a sixth of a stack's run. Here the Output's data is one
    future that the resolver completes with the same _OutputData (or the
    same exception), which is what awaiting the task would have produced.
    """
    resolvers: dict[str, Callable[..., None]] = {}
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


class InlineExecutor(ThreadPoolExecutor):
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

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - as a pool thread would: onto the future
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

