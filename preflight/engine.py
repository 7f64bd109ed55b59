"""Running a Pulumi Python program in-process under mocks, recording what the engine would see.

``run_stack`` sets up the SDK's runtime state as the language host does for
one run, with ``recording.RecordingMonitor`` as the engine's resource monitor,
runs the program's entry point and hands back what was recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import os
import runpy
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack

from . import SECRET_PLACEHOLDER
from .mocks import Offline
from .program_imports import add_program_root, purge_program_modules
from .project import StackConfig
from .recording import CapturingEngine, RecordingMonitor, ResourceRecord
from .sdk_patches import InlineExecutor, fast_path_problem, patched_sdk
from .wire import UNKNOWN  # noqa: F401 - imported from here by tests/policy/test_servicer.py


@dataclass
class StackRun:
    """Outcome of running one stack of a program."""

    config: StackConfig
    resources: list[ResourceRecord]
    error: str | None = None
    traceback: str | None = None
    output: str = ""
    """What the program printed, plus what it logged through pulumi.log."""
    elapsed_ms: float = 0.0
    fast_path: bool = False
    """Whether the run used preflight's replacements of SDK internals (``sdk_patches``)."""
    unexpanded: list[str] = field(default_factory=list)
    """"type name" of each component accepted unexpanded (``--allow-unexpanded``): not judged."""


def _describe_error(exc: BaseException, program_dir: str) -> str:
    """One line: where in the program (file:line of its own code, nearest the error) and the cause."""
    if isinstance(exc, pulumi.RunError):
        cause = str(exc)
    elif isinstance(exc, SystemExit):
        cause = f"program called sys.exit({exc.code!r})"
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        cause = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    where = _program_frame(exc, program_dir)
    return f"{where}: {cause}" if where else cause


def _program_frame(exc: BaseException, program_dir: str) -> str:
    """``file:line`` (relative to the program) of the innermost frame in the program's own code."""
    root = os.path.join(os.path.realpath(program_dir), "")
    found = ""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # The traceback it has now, then (innermost) the one it had when it first failed an output.
        tracebacks = [current.__traceback__, getattr(current, ORIGIN_TRACEBACK, None)]
        for frame in [f for tb in tracebacks if tb is not None for f in traceback.extract_tb(tb)]:
            path = os.path.realpath(frame.filename)
            if path.startswith(root) and f"{os.sep}site-packages{os.sep}" not in path:
                found = f"{os.path.relpath(path, root)}:{frame.lineno}"
        current = current.__cause__ or current.__context__
        if found:
            break
    return found


ORIGIN_TRACEBACK = "_preflight_origin_traceback"
"""Attribute of an exception: its traceback as it left the task it was raised in, first."""


async def _remembering_origin(coro: Any) -> Any:
    """Run a task's coroutine; an exception leaving it keeps the traceback it has here, the first time.

    One exception fails every output built on the failing one, each an asyncio Future. CPython's
    Future hands the traceback back only to the first fetch of its result and clears it, so a
    second ``await`` of the same future re-raises the shared exception with none. Which future the
    run awaits last follows memory addresses: without this, the place an error names in the
    program changed with unrelated code."""
    try:
        return await coro
    except BaseException as exc:
        if exc.__traceback__ is not None and not hasattr(exc, ORIGIN_TRACEBACK):
            with contextlib.suppress(AttributeError, TypeError):  # an exception type without a __dict__
                setattr(exc, ORIGIN_TRACEBACK, exc.__traceback__)
        raise


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    return asyncio.Task(_remembering_origin(coro), loop=loop, **kwargs)


def _thread_loop_state() -> tuple[Any, bool]:
    """This thread's event loop as the policy holds it (loop, whether one was set), without creating one.

    Reads asyncio's private ``_local`` (there is no public way to ask without
    creating a loop), on either path; where it is missing, the caller's
    thread is left without a current loop rather than with this run's closed one."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return getattr(local, "_loop", None), getattr(local, "_set_called", False)


def _restore_thread_loop_state(state: tuple[Any, bool]) -> None:
    """Give the caller's thread back the loop it had: a test or tool that runs a stack
    in-process and uses asyncio afterwards must not find "no current event loop"."""
    loop, set_called = state
    asyncio.set_event_loop(loop if loop is None or not loop.is_closed() else None)
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    if local is not None and hasattr(local, "_set_called"):
        local._set_called = set_called


class SecretObjectPlaceholder(dict[str, Any]):
    """Stands in for a config object whose whole value is a secret: every key reads as a placeholder."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def __missing__(self, name: str) -> str:
        return f"{SECRET_PLACEHOLDER}-{self.key}.{name}"

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]


# What a typed getter reads from a whole-secret placeholder (a secret's value is not known offline).
_SECRET_TYPED: dict[str, Callable[[str], Any]] = {"_get_object": SecretObjectPlaceholder, "_get_int": lambda _k: 0,
                 "_get_float": lambda _k: 0.0, "_get_bool": lambda _k: False}


@contextlib.contextmanager
def _secret_config_placeholders(cfg: StackConfig) -> Any:
    """Config's object/int/float/bool getters (secret or not) on a value that is wholly `secure:`:
    the placeholder string is no JSON or number, so give them a stand-in of the type asked for."""
    secret = set(cfg.secret_keys)
    originals = {name: getattr(pulumi.Config, name) for name in _SECRET_TYPED}

    def wrap(name: str) -> Any:
        original = originals[name]

        def getter(self: pulumi.Config, key: str, *args: Any, **kwargs: Any) -> Any:
            full = self.full_key(key)
            if full in secret and cfg.config.get(full) == f"{SECRET_PLACEHOLDER}-{full}":
                self._get(key, *args, **kwargs)  # as the SDK does: marks the key as read
                return _SECRET_TYPED[name](full)
            return original(self, key, *args, **kwargs)

        return getter

    for name in _SECRET_TYPED:
        setattr(pulumi.Config, name, wrap(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(pulumi.Config, name, original)


@contextlib.contextmanager
def _stack_reference_outputs_checked(monitor: RecordingMonitor) -> Any:
    """``StackReference.get_output`` of a name the referenced stack does not have is an error
    naming stack and output (the SDK gives None, and the program runs on with it)."""
    original = pulumi.StackReference.get_output

    def get_output(self: pulumi.StackReference, name: pulumi.Input[str]) -> pulumi.Output[Any]:
        def check(args: list[Any]) -> None:
            output_name, outputs, stack = args
            if outputs is not None and output_name not in outputs:
                raise monitor.answers.missing_output(stack, output_name)

        checked = pulumi.Output.all(pulumi.Output.from_input(name), self.outputs, self.name).apply(check)
        # The SDK's own value, secret when the referenced stack marks it so.
        return pulumi.Output.all(original(self, name), checked).apply(lambda v: v[0])

    pulumi.StackReference.get_output = get_output  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.StackReference.get_output = original  # type: ignore[method-assign]


def _run_main(path: str) -> None:
    runpy.run_path(path, run_name="__main__")


def run_stack(cfg: StackConfig, fast: bool = True, offline: Offline | None = None) -> StackRun:
    """Run one stack of a program under mocks with fresh runtime state.

    ``fast``: with preflight's replacements of SDK internals, where they were
    checked (``sdk_patches.fast_path_problem``); otherwise the SDK as published.
    ``offline``: the answers for what a preview would ask the cloud (invokes, stack references),
    and whether computed outputs of new resources stay unknown as ``pulumi preview`` of a stack being
    created leaves them, or get their mock values (``--mock-computed``); ``is_dry_run()`` is true either way."""
    offline = offline or Offline()
    start = time.perf_counter()
    monitor = RecordingMonitor(cfg, offline)
    captured = io.StringIO()
    engine = CapturingEngine(captured)
    result = StackRun(config=cfg, resources=[], fast_path=fast and fast_path_problem() is None)

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
                # A preview of a stack being created: computed outputs of new
                # resources are unknown, as `pulumi preview` hands them to the program.
                # Always a preview, also with --mock-computed: a program's deploy path
                # (`if not is_dry_run()`) writes files and calls services; an offline
                # check must not (it wrote mock host keys into ~/.ssh/odoo-hosting).
                dry_run=True,
                organization="organization",
                root_directory=cfg.program_dir,
            )
        )
        set_all_config(dict(cfg.config), list(cfg.secret_keys))
        loop = asyncio.new_event_loop()
        loop.set_task_factory(_task_factory)
        if result.fast_path:
            loop.set_default_executor(InlineExecutor())
        asyncio.set_event_loop(loop)
        # Errors of stray tasks are reported through run_in_stack; keep the loop quiet.
        loop.set_exception_handler(lambda _loop, _ctx: None)
        try:
            loop.run_until_complete(run_in_stack(lambda: _run_main(cfg.main)))
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
    add_program_root(cfg.program_dir)
    # The caller's own imports from the program dir (a test importing the
    # program's components) are put back afterwards, untouched.
    callers_modules = purge_program_modules(cfg.program_dir)
    try:
        # As the language host does: cwd is the project directory, and the
        # entry point's directory comes first on the import path.
        os.chdir(cfg.program_dir)
        entry_dir = os.path.dirname(cfg.main)
        if sys.path:
            sys.path[0] = entry_dir
        else:
            sys.path.append(entry_dir)
        patches = patched_sdk() if result.fast_path else contextlib.nullcontext()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), patches, \
                _stack_reference_outputs_checked(monitor), _secret_config_placeholders(cfg), \
                warnings.catch_warnings():
            # Outputs nobody reads (the SDK's own, of a component's unused fields) hold coroutines
            # that are collected unawaited when the run's loop closes: noise, not the program's.
            warnings.filterwarnings("ignore", message=r"coroutine 'Output\.\w+' was never awaited",
                                    category=RuntimeWarning)
            contextvars.copy_context().run(run)
    except BaseException as exc:  # noqa: BLE001 - a failing program is a result, not a crash
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.error = _describe_error(exc, cfg.program_dir)
        result.traceback = traceback.format_exc()
    finally:
        os.chdir(old_cwd)
        if old_path0 is not None:
            sys.path[0] = old_path0
        purge_program_modules(cfg.program_dir)
        sys.modules.update(callers_modules)

    if monitor.answers.problem is not None:
        # Asked of the cloud and not answerable offline (the program may have caught it): the cause.
        result.error = monitor.answers.problem
    result.unexpanded = [f"{r.type} {r.name}" for r in monitor.unexpanded]
    result.resources = list(monitor.records)
    result.output = captured.getvalue()
    result.elapsed_ms = (time.perf_counter() - start) * 1000
    return result
