"""Resource transforms applied as the engine applies them, under mocks.

The SDK sends a resource's own transforms (``ResourceOptions(transforms=...)``) with its
registration, and stack transforms (``pulumi.runtime.register_resource_transform``) once, as
callbacks; the engine calls them before it does anything else with the registration: the
resource's own first, then each parent's up to the stack, then the stack's. Pulumi's mock
monitor only keeps them (``MockMonitor.get_registered_transforms``), so a program's transforms
were lost. Here the callbacks the SDK registered are called with the engine's
``TransformRequest`` and their ``TransformResponse`` replaces the registration's properties and
options. Stack invoke transforms (``pulumi.runtime.register_invoke_transform``) are called the same
way on every invoke, in the order they were registered, before the invoke is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime._callbacks import _CallbackServicer
from pulumi.runtime.proto import resource_pb2

# RegisterResourceRequest field <-> TransformResourceOptions field, for what a transform may change.
_SCALARS = (("protect", "protect"), ("retainOnDelete", "retain_on_delete"), ("deletedWith", "deleted_with"),
            ("version", "version"), ("pluginDownloadURL", "plugin_download_url"))
_LISTS = (("ignoreChanges", "ignore_changes"), ("replaceOnChanges", "replace_on_changes"),
          ("additionalSecretOutputs", "additional_secret_outputs"), ("dependencies", "depends_on"),
          ("hideDiffs", "hide_diff"))


def _callback(token: str) -> Any:
    for servicer in _CallbackServicer._servicers:
        cb = servicer._callbacks.get(token)
        if cb is not None:
            return cb, servicer._loop
    return None, None


def _run(coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Run a callback coroutine to its end from the monitor, on or off the program's loop thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is None:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
    # Called inline on the loop's own thread (the fast path's executor): step it by hand. A
    # transform's props and options are plain values, so nothing it awaits is still pending.
    try:
        while True:
            waited = coro.send(None)
            if waited is not None and not waited.done():
                coro.close()
                raise RuntimeError("a transform awaited something still pending; run with --no-fast-path")
    except StopIteration as stop:
        return stop.value


def _options(request: Any) -> resource_pb2.TransformResourceOptions:
    opts = resource_pb2.TransformResourceOptions()
    for ours, theirs in _SCALARS:
        setattr(opts, theirs, getattr(request, ours))
    for ours, theirs in _LISTS:
        getattr(opts, theirs).extend(getattr(request, ours))
    if request.deleteBeforeReplaceDefined:
        opts.delete_before_replace = request.deleteBeforeReplace
    if request.provider:
        opts.provider = request.provider
    opts.custom_timeouts.CopyFrom(request.customTimeouts)
    opts.aliases.extend(request.aliases)
    return opts


def _apply_options(request: Any, opts: resource_pb2.TransformResourceOptions) -> None:
    for ours, theirs in _SCALARS:
        setattr(request, ours, getattr(opts, theirs))
    for ours, theirs in _LISTS:
        field = getattr(request, ours)
        del field[:]
        field.extend(getattr(opts, theirs))
    if opts.HasField("delete_before_replace"):
        request.deleteBeforeReplace = opts.delete_before_replace
        request.deleteBeforeReplaceDefined = True
    request.provider = opts.provider
    request.customTimeouts.CopyFrom(opts.custom_timeouts)
    del request.aliases[:]
    request.aliases.extend(opts.aliases)


def _call(token: str, what: str, message: Any, response: Any) -> Any:
    """Call the transform callback ``token`` with ``message``; its answer parsed into ``response``."""
    cb, loop = _callback(token)
    if cb is None:
        raise RuntimeError(f"transform callback {token} of {what} is not registered")
    response.ParseFromString(_run(cb(message.SerializeToString()), loop).SerializeToString())
    return response


def _replace(target: Any, source: Any) -> None:
    """Replace the Struct ``target`` with a copy of ``source`` (which may be part of a reply)."""
    copied = struct_pb2.Struct()
    copied.CopyFrom(source)
    target.Clear()
    target.MergeFrom(copied)


def apply_transforms(request: Any, tokens: list[str]) -> None:
    """Call the transform callbacks named by ``tokens`` in order, each on the previous one's result,
    and write the last result into ``request`` (a RegisterResourceRequest)."""
    for token in tokens:
        message = resource_pb2.TransformRequest(
            type=request.type, name=request.name, custom=request.custom, parent=request.parent,
            properties=request.object, options=_options(request))
        response = _call(token, f"{request.type} {request.name!r}", message, resource_pb2.TransformResponse())
        _replace(request.object, response.properties)
        if response.HasField("options"):
            _apply_options(request, response.options)


def apply_invoke_transforms(request: Any, tokens: list[str]) -> None:
    """Call the stack's invoke transform callbacks named by ``tokens`` in order on an invoke
    (a ResourceInvokeRequest) and write the last result's args and options into ``request``."""
    for token in tokens:
        options = resource_pb2.TransformInvokeOptions(
            provider=request.provider, version=request.version, plugin_download_url=request.pluginDownloadURL)
        message = resource_pb2.TransformInvokeRequest(token=request.tok, args=request.args, options=options)
        response = _call(token, f"invoke {request.tok}", message, resource_pb2.TransformInvokeResponse())
        _replace(request.args, response.args)
        if response.HasField("options"):
            request.provider = response.options.provider
            request.version = response.options.version
            request.pluginDownloadURL = response.options.plugin_download_url
