"""Fleet roll-outs with a fake runner (the order, the limits, the stop, the summary), and the
Automation API adapter against a fake ``pulumi.automation`` stack.

What only the Pulumi CLI can run (not here): ``AutomationRunner`` against real stacks (it shells
out to ``pulumi preview/up --policy-pack``, which needs the CLI, the stacks' backend and the cloud
credentials). The adapter test checks what it asks the Automation API for.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from fleet import AutomationRunner, roll_out
from fleet.__main__ import all_stacks, main


class FakeRunner:
    """Records start/end times; fails the stacks in ``fail``; tracks how many run at once."""

    def __init__(self, fail=(), seconds=0.05):
        self.fail, self.seconds = set(fail), seconds
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.log: list[tuple[str, str]] = []

    def run(self, stack, command, on_output):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.log.append(("start", stack))
        on_output(f"{command} of {stack}: step one\n")
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
            self.log.append(("end", stack))
        if stack in self.fail:
            raise RuntimeError(f"{stack}: mandatory policy violation\ndetails")
        return {"same": 40, "update": 1}


STACKS = [f"client-{n:02d}" for n in range(8)]


def test_canaries_run_first_and_alone_then_n_at_a_time():
    runner = FakeRunner()
    lines = []
    summary = roll_out(STACKS, runner, "up", parallel=3, canary=2, progress=lines.append)
    assert summary.ok and [r.status for r in summary.results] == ["succeeded"] * 8
    # The canaries: each ends before anything else starts.
    assert runner.log[:4] == [("start", "client-00"), ("end", "client-00"), ("start", "client-01"),
                              ("end", "client-01")]
    assert runner.peak == 3  # never more than --parallel, and the limit is used
    assert [r.phase for r in summary.results] == ["canary"] * 2 + ["fleet"] * 6
    assert "[client-00] up started (canary)" in lines and "[client-05] up of client-05: step one" in lines
    assert any(line.startswith("[client-07] succeeded in") for line in lines)


def test_a_failed_canary_stops_everything():
    runner = FakeRunner(fail={"client-00"})
    summary = roll_out(STACKS, runner, "preview", parallel=4, canary=2)
    assert not summary.ok
    assert [r.status for r in summary.results] == ["failed"] + ["not started"] * 7
    assert summary.results[0].error.startswith("RuntimeError: client-00: mandatory policy violation")


def test_after_the_first_failure_nothing_new_starts():
    runner = FakeRunner(fail={"client-02"}, seconds=0.05)
    summary = roll_out(STACKS, runner, "up", parallel=2, canary=1)
    statuses = {r.stack: r.status for r in summary.results}
    assert statuses["client-00"] == "succeeded" and statuses["client-02"] == "failed"
    started = [s for what, s in runner.log if what == "start"]
    # client-01 and client-02 ran together; at most the one beside the failure finished; nothing after.
    assert len(started) <= 4 and "client-07" not in started
    assert all(statuses[s] == "not started" for s in STACKS if s not in started)


def test_summary_json_and_markdown(tmp_path):
    summary = roll_out(STACKS[:3], FakeRunner(fail={"client-02"}), "up", parallel=1, canary=1)
    data = json.loads(summary.as_json())
    assert data["ok"] is False and data["canary"] == ["client-00"] and data["parallel"] == 1
    assert [s["status"] for s in data["stacks"]] == ["succeeded", "succeeded", "failed"]
    assert data["stacks"][0]["changes"] == {"same": 40, "update": 1}
    text = summary.as_markdown()
    assert text.startswith("# Fleet up: STOPPED on a failure\n")
    assert "| client-00 | canary | succeeded |" in text and "| client-02 | fleet | failed |" in text
    assert "update 1" in text


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        roll_out(STACKS, FakeRunner(), "up", parallel=0)
    with pytest.raises(ValueError, match="twice"):
        roll_out(["a", "a"], FakeRunner(), "up")


def test_command_line_writes_both_summaries_and_exits_by_the_outcome(tmp_path, capsys):
    prefix = tmp_path / "summary"
    stacks = all_stacks()
    assert stacks == ["example-private", "example-public"]
    code = main(["preview", "--parallel", "2", "--canary", "1", "--summary", str(prefix)], runner=FakeRunner())
    assert code == 0
    assert json.loads((tmp_path / "summary.json").read_text())["ok"] is True
    out = capsys.readouterr()
    assert out.out == (tmp_path / "summary.md").read_text() and "[example-private] preview started" in out.err
    assert main(["up", "--stacks", "example-public", "--summary", str(prefix)],
                runner=FakeRunner(fail={"example-public"})) == 1
    assert main(["up", "--stacks", "no-such-stack", "--summary", str(prefix)], runner=FakeRunner()) == 2


def test_automation_runner_previews_and_updates_with_the_policy_pack_and_hides_secrets(monkeypatch, tmp_path):
    from pulumi import automation as auto

    calls = []

    class FakeStack:
        def preview(self, **kwargs):
            calls.append(("preview", kwargs))
            kwargs["on_output"]("Previewing update (example-public)\n")
            return type("P", (), {"change_summary": {"same": 3, "create": 1}})()

        def up(self, **kwargs):
            calls.append(("up", kwargs))
            return type("U", (), {"summary": type("S", (), {"resource_changes": {"update": 2}})()})()

    def select_stack(**kwargs):
        calls.append(("select", kwargs))
        return FakeStack()

    monkeypatch.setattr(auto, "select_stack", select_stack)
    runner = AutomationRunner(work_dir=tmp_path, policy_pack=tmp_path / "pack")
    seen = []
    assert runner.run("example-public", "preview", seen.append) == {"same": 3, "create": 1}
    assert runner.run("example-public", "up", seen.append) == {"update": 2}
    assert calls[0] == ("select", {"stack_name": "example-public", "work_dir": str(tmp_path)})
    assert calls[1][1]["policy_packs"] == [str(tmp_path / "pack")]
    assert calls[3][1]["policy_packs"] == [str(tmp_path / "pack")] and calls[3][1]["show_secrets"] is False
    assert seen == ["Previewing update (example-public)\n"]
