"""The roll-out: which stack runs when, and what happened (see :mod:`fleet`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Command = Literal["preview", "up"]
ROOT = Path(__file__).resolve().parents[1]
POLICY_PACK = ROOT / "policies"


@dataclass
class StackResult:
    stack: str
    status: Literal["succeeded", "failed", "not started"]
    phase: Literal["canary", "fleet"]
    seconds: float = 0.0
    changes: dict[str, int] = field(default_factory=dict)
    """Resource operations (create, update, delete, same...) as the engine counted them."""
    error: str | None = None


class StackRunner(Protocol):
    def run(self, stack: str, command: Command, on_output: Callable[[str], None]) -> dict[str, int]:
        """Preview or update ``stack``; the change counts. Raises on failure (a violation included)."""


class AutomationRunner:
    """Each stack through the Automation API, in this project's directory, with the policy pack.
    Needs the Pulumi CLI on PATH and the stacks' backend logged in (or PULUMI_BACKEND_URL)."""

    def __init__(self, work_dir: Path = ROOT, policy_pack: Path = POLICY_PACK) -> None:
        self.work_dir, self.policy_pack = work_dir, policy_pack

    def run(self, stack: str, command: Command, on_output: Callable[[str], None]) -> dict[str, int]:
        from pulumi import automation as auto

        selected = auto.select_stack(stack_name=stack, work_dir=str(self.work_dir))
        packs = [str(self.policy_pack)]
        if command == "preview":
            preview = selected.preview(policy_packs=packs, on_output=on_output, color="never")
            return {str(k): int(v) for k, v in (preview.change_summary or {}).items()}
        up = selected.up(policy_packs=packs, on_output=on_output, color="never", show_secrets=False)
        return {str(k): int(v) for k, v in (up.summary.resource_changes or {}).items()}


@dataclass
class RolloutSummary:
    command: Command
    parallel: int
    canary: list[str]
    results: list[StackResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status == "succeeded" for r in self.results)

    def as_json(self) -> str:
        return json.dumps({"command": self.command, "parallel": self.parallel, "canary": self.canary,
                           "ok": self.ok, "seconds": round(self.seconds, 1),
                           "stacks": [asdict(r) for r in self.results]}, indent=1)

    def as_markdown(self) -> str:
        done = sum(r.status == "succeeded" for r in self.results)
        verdict = "all succeeded" if self.ok else "STOPPED on a failure"
        lines = [f"# Fleet {self.command}: {verdict}", "",
                 f"{done} of {len(self.results)} stacks succeeded in {self.seconds:.0f} s "
                 f"(canary: {', '.join(self.canary) or 'none'}; then {self.parallel} at a time).", "",
                 "| stack | phase | result | seconds | changes | error |", "|---|---|---|---|---|---|"]
        for r in self.results:
            changes = ", ".join(f"{k} {v}" for k, v in sorted(r.changes.items())) or "-"
            error = (r.error or "").replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {r.stack} | {r.phase} | {r.status} | {r.seconds:.0f} | {changes} | {error} |")
        return "\n".join(lines) + "\n"


def roll_out(stacks: Sequence[str], runner: StackRunner, command: Command, *, parallel: int = 1, canary: int = 0,
             progress: Callable[[str], None] = lambda line: None) -> RolloutSummary:
    """Canaries (the first ``canary`` stacks) one at a time, then the rest ``parallel`` at a time; after a
    failure nothing new starts (running stacks finish) and the rest are reported "not started"."""
    if parallel < 1 or canary < 0:
        raise ValueError("need parallel >= 1 and canary >= 0")
    if len(set(stacks)) != len(stacks):
        raise ValueError("a stack is listed twice")
    started = time.monotonic()
    canaries, rest = list(stacks[:canary]), list(stacks[canary:])
    results: dict[str, StackResult] = {}
    stop = threading.Event()

    def one(stack: str, phase: Literal["canary", "fleet"]) -> StackResult:
        begin = time.monotonic()
        progress(f"[{stack}] {command} started ({phase})")

        def output(line: str) -> None:
            text = line.rstrip()
            if text:
                progress(f"[{stack}] {text}")
        try:
            changes = runner.run(stack, command, output)
        except Exception as error:  # noqa: BLE001 - a stack's failure, reported and stopping the roll-out
            stop.set()
            result = StackResult(stack, "failed", phase, time.monotonic() - begin,
                                 error=f"{type(error).__name__}: {error}".strip()[-2000:])
            progress(f"[{stack}] FAILED after {result.seconds:.0f} s: {result.error.splitlines()[0][:200]}"
                     if result.error else f"[{stack}] FAILED")
            return result
        result = StackResult(stack, "succeeded", phase, time.monotonic() - begin, changes=changes)
        progress(f"[{stack}] succeeded in {result.seconds:.0f} s")
        return result

    for stack in canaries:
        if stop.is_set():
            break
        results[stack] = one(stack, "canary")

    queue = list(rest)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running: dict[Future[StackResult], str] = {}
        while (queue and not stop.is_set()) or running:
            while queue and not stop.is_set() and len(running) < parallel:
                stack = queue.pop(0)
                running[pool.submit(one, stack, "fleet")] = stack
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                results[running.pop(future)] = future.result()

    for stack in stacks:
        if stack not in results:
            results[stack] = StackResult(stack, "not started", "canary" if stack in canaries else "fleet")
            progress(f"[{stack}] not started (stopped after a failure)")
    return RolloutSummary(command=command, parallel=parallel, canary=canaries,
                          results=[results[s] for s in stacks], seconds=time.monotonic() - started)
