"""Running the planned stacks: one by one in this process, or in forked worker processes."""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection

from . import PreflightError
from .engine import StackRun, run_stack
from .mocks import Offline
from .project import StackConfig, load_stack

_FROZEN_IN: int | None = None


def _freeze_imports_once() -> None:
    """After this process's first stack, move what it has imported out of the garbage collector's sight.

    pulumi and the provider SDKs are a few hundred thousand long-lived
    objects; every full collection walked them all, a quarter of a stack's
    run. gc.freeze() parks them (and anything else alive now) in the
    permanent generation; what a stack makes afterwards is collected as usual.
    """
    global _FROZEN_IN
    if os.getpid() != _FROZEN_IN:
        _FROZEN_IN = os.getpid()
        gc.collect()
        gc.freeze()


Outcome = tuple[StackConfig | None, StackRun | None, str | None]
"""(config, run, None) for a stack that ran; (None, None, error) for one that could not."""


def run_planned(program: str, stack: str, fast: bool = True, offline: Offline | None = None) -> Outcome:
    """Load and run one stack: (config, run, None), or (None, None, error) when the stack files are bad."""
    try:
        cfg = load_stack(program, stack)
    except PreflightError as e:
        return None, None, f"stack {stack}: {e}"
    run = run_stack(cfg, fast, offline)
    _freeze_imports_once()
    return cfg, run, None


def _isolated_child(conn: Connection, program: str, stack: str, fast: bool, offline: Offline | None) -> None:
    conn.send(run_planned(program, stack, fast, offline))
    conn.close()


def _run_isolated(program: str, stack: str, fast: bool, offline: Offline | None) -> Outcome:
    """Run one stack in a freshly spawned process (not forked: this process may hold gRPC threads)."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_isolated_child, args=(sender, program, stack, fast, offline), daemon=True)
    process.start()
    sender.close()
    try:
        outcome: Outcome = receiver.recv()
        return outcome
    except EOFError:
        process.join()
        return None, None, (f"stack {stack}: the program's process exited with code {process.exitcode} "
                            "before it finished (os._exit, a signal or an interpreter crash)")
    finally:
        receiver.close()
        process.join()


class Runner:
    """Runs the planned stacks, in order or in worker processes, and hands them back in plan order.

    Workers are forked when the runner starts, before this process opens any
    gRPC channel or thread (forking those is unsafe), and live for the whole
    run: like the in-process runner, each worker imports a program's modules
    afresh for every stack and keeps the installed packages (pulumi and the
    providers) it has imported, so only the first stacks pay for those.
    """

    def __init__(self, plan: list[tuple[str, str]], jobs: int, fast: bool = True,
                 offline: Offline | None = None) -> None:
        self.plan = plan
        self.fast = fast
        self.offline = offline
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future[Outcome]] = []
        if jobs > 1 and len(plan) > 1:
            self.pool = ProcessPoolExecutor(max_workers=min(jobs, len(plan)),
                                            mp_context=multiprocessing.get_context("fork"))
            self.futures = [self.pool.submit(run_planned, program, stack, fast, offline) for program, stack in plan]

    def results(self) -> Iterator[tuple[int, str, str, Outcome]]:
        """(index, program, stack, (config, run, error)) for every planned stack, in plan order."""
        for index, (program, stack) in enumerate(self.plan):
            if self.pool is None:
                yield index, program, stack, run_planned(program, stack, self.fast, self.offline)
                continue
            try:
                outcome = self.futures[index].result()
            except BrokenProcessPool:
                # A worker died (a program called os._exit, or crashed the
                # interpreter), and the pool with it: every stack it had not
                # finished runs again, each in a process of its own, so only
                # the culprit's stack reports the death.
                outcome = _run_isolated(program, stack, self.fast, self.offline)
            yield index, program, stack, outcome

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
