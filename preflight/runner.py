"""Running the planned stacks: one by one in this process, or in forked worker processes."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
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
    if cfg.virtualenv and not _is_this_interpreter(cfg.virtualenv):
        return _run_in_virtualenv(cfg, fast, offline)
    run = run_stack(cfg, fast, offline)
    _freeze_imports_once()
    return cfg, run, None


def _is_this_interpreter(virtualenv: str) -> bool:
    return os.path.realpath(virtualenv) == os.path.realpath(sys.prefix)


def _run_in_virtualenv(cfg: StackConfig, fast: bool, offline: Offline | None) -> Outcome:
    """Run the stack with the interpreter of the program's own virtualenv (its packages, its Python)."""
    python = os.path.join(cfg.virtualenv, "bin", "python")
    if not os.access(python, os.X_OK):
        return None, None, (f"stack {cfg.stack}: the program's virtualenv {cfg.virtualenv} (Pulumi.yaml "
                            f"runtime.options) has no {os.path.join('bin', 'python')}: create it, e.g. "
                            f"python3 -m venv {cfg.virtualenv} && {python} -m pip install -r requirements.txt")
    with tempfile.TemporaryDirectory(prefix="preflight-venv-") as tmp:
        request, answer = os.path.join(tmp, "request.pickle"), os.path.join(tmp, "outcome.pickle")
        with open(request, "wb") as f:
            # The config as loaded here: the child does not read the stack files (or ask poetry) again.
            pickle.dump((cfg, fast, offline), f)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PREFLIGHT_ROOT,
                                                                        os.environ.get("PYTHONPATH")])))
        proc = subprocess.run([python, "-m", "preflight.runner", request, answer], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not os.path.exists(answer):
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return None, None, (f"stack {cfg.stack}: running it with {python} failed "
                                f"(exit {proc.returncode}): {last}")
        with open(answer, "rb") as f:
            outcome: Outcome = pickle.load(f)
        return outcome


_PREFLIGHT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _virtualenv_child(request: str, answer: str) -> None:
    """In the program's interpreter: run the stack of ``request`` here, write the outcome to ``answer``."""
    with open(request, "rb") as f:
        cfg, fast, offline = pickle.load(f)
    outcome: Outcome = (cfg, run_stack(cfg, fast, offline), None)
    with open(answer, "wb") as f:
        pickle.dump(outcome, f)


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


if __name__ == "__main__":
    _virtualenv_child(sys.argv[1], sys.argv[2])
