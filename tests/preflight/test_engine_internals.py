"""The pieces of the engine that replace slower SDK or protobuf code keep their contracts."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

import pulumi.runtime.rpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import settings as pulumi_settings

from preflight import engine, program_imports, sdk_patches, wire
from preflight.project import load_stack

ROOT = Path(__file__).resolve().parents[2]


def _sdk_transfer_properties():
    """The SDK's own transfer_properties, from a fresh copy of its module (run_stack swaps the installed one)."""
    path = pulumi.runtime.rpc.__file__
    spec = importlib.util.spec_from_file_location("pulumi.runtime._rpc_as_shipped", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.transfer_properties


def test_struct_to_dict_matches_message_to_dict():
    struct = struct_pb2.Struct()
    struct.update({
        "s": "text", "n": 3, "f": 2.5, "t": True, "false": False, "none": None, "empty": {}, "list": [],
        "nested": {"a": [1, "two", {"b": None, "c": [True, 0.1]}], "secret": {"4dabf18193072939515e22adb298388d": "x"}},
    })
    assert wire.struct_to_dict(struct) == json_format.MessageToDict(struct)


class _Resource:
    """Enough of a resource for transfer_properties: it stores Outputs in ``__dict__``."""


async def _data(output):
    data = await output._data
    return data.value, data.is_known, data.is_secret, data.resources


@pytest.mark.parametrize("custom", [True, False])
def test_transfer_properties_resolves_outputs_as_the_sdk_does(custom):
    sdk = _sdk_transfer_properties()
    assert sdk is not sdk_patches._transfer_properties
    props = {"urn": None, "id": None, "name": None, "ipv4Address": None, "labels": None, "broken": None,
             "unknown": None}
    failure = RuntimeError("registration failed")

    async def scenario(transfer):
        pulumi_settings.SETTINGS.outputs.clear()
        resource, dependency = _Resource(), _Resource()
        resolvers = transfer(resource, props, custom)
        outputs = {name: resource.__dict__[name] for name in resolvers}
        tracked_before = all(o._data in pulumi_settings.SETTINGS.outputs for o in outputs.values())
        resolvers["name"]("web-1", True, False, {dependency}, None)
        resolvers["ipv4Address"]("203.0.113.7", True, True, None, None)
        resolvers["labels"]({"client": "acme"}, True, False, set(), None)
        resolvers["unknown"](None, False, False, None, None)
        resolvers["broken"](None, False, False, None, failure)
        if "id" in resolvers:  # a component's "id" is an ordinary output
            resolvers["id"]("component-id", True, False, None, None)
        results = {}
        for name, output in outputs.items():
            try:
                value, known, secret, deps = await _data(output)
                deps = {"self" if d is resource else "dependency" for d in deps}
                results[name] = (value, known, secret, sorted(deps))
            except RuntimeError as e:
                results[name] = ("raised", str(e))
        for _ in range(3):  # let the done-callbacks (untracking) run
            await asyncio.sleep(0)
        still_tracked = sorted(n for n, o in outputs.items() if o._data in pulumi_settings.SETTINGS.outputs)
        return sorted(resolvers), tracked_before, results, still_tracked

    def run(transfer):
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(scenario(transfer))
        finally:
            loop.close()
            pulumi_settings.SETTINGS.outputs.clear()  # the failed one stays tracked; not for later tests

    expected = run(sdk)
    assert run(sdk_patches._transfer_properties) == expected
    names, tracked_before, results, still_tracked = expected
    assert "urn" not in names and ("id" in names) is (not custom) and tracked_before
    assert results["name"] == ("web-1", True, False, ["dependency", "self"])
    assert results["unknown"][1] is False and results["broken"] == ("raised", "registration failed")
    assert still_tracked == ["broken"]  # a failed output stays for wait_for_rpcs to report


def test_bytecode_cache_holds_program_modules_only(tmp_path):
    cache = tmp_path / "pycache"
    with program_imports.program_bytecode_cache(str(cache)):
        run = engine.run_stack(load_stack(str(ROOT), "example-public"))
    assert run.error is None
    cached = [p for p in cache.rglob("*.pyc")]
    program_root = str(cache) + str(ROOT)
    assert any(str(p).startswith(os.path.join(program_root, "components")) for p in cached)
    # Installed packages keep their own __pycache__ (a global prefix would recompile them all).
    assert not [p for p in cached if "site-packages" in str(p) or not str(p).startswith(program_root)]
    assert program_imports._program_path_hook not in sys.path_hooks


def _write_program(root: Path, answer: str) -> None:
    (root / "Pulumi.yaml").write_text("name: fresh\nruntime: python\n")
    (root / "Pulumi.one.yaml").write_text("config: {}\n")
    (root / "lib.py").write_text(
        "import dataclasses\n"
        "CALLS = []\n"
        f"ANSWER = {answer!r}\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Point:\n"
        "    x: int\n"
        "    y: int = 2\n"
    )
    (root / "__main__.py").write_text(
        "import lib\n"
        "lib.CALLS.append(1)\n"
        "p = lib.Point(1)\n"
        "print('calls', len(lib.CALLS), 'answer', lib.ANSWER, repr(p), p == lib.Point(1, 2), hash(p) == hash((1, 2)))\n"
    )


def test_program_modules_run_afresh_each_stack_and_edits_between_stacks_are_seen(tmp_path):
    """Module bodies run anew per stack (state starts over) though their code and the dataclass
    methods' code are compiled once; a module edited between stacks is read again."""
    program = tmp_path / "program"
    program.mkdir()
    _write_program(program, "first")
    outputs = []
    with program_imports.program_bytecode_cache(str(tmp_path / "pycache")):
        for answer in ("first", "first", "second, longer"):
            if answer != "first":
                _write_program(program, answer)
            run = engine.run_stack(load_stack(str(program), "one"))
            assert run.error is None, run.traceback
            outputs.append(run.output.strip())
            if len(outputs) == 1:
                compiled = len(sdk_patches._COMPILED)
    expected = "calls 1 answer {} Point(x=1, y=2) True True"
    assert outputs == [expected.format("first")] * 2 + [expected.format("second, longer")]
    # The second stack's dataclass compiled nothing new: its generated methods came from the cache.
    assert compiled and len(sdk_patches._COMPILED) == compiled


def test_sdk_patches_are_undone_after_a_run():
    import dataclasses

    import pulumi.log
    from pulumi import _types
    debug, unwrap_type = pulumi.log.debug, _types.unwrap_type
    run = engine.run_stack(load_stack(str(ROOT), "example-public"))
    assert run.error is None
    assert not hasattr(dataclasses, "exec") and pulumi.log.debug is debug and _types.unwrap_type is unwrap_type
    assert pulumi.runtime.rpc.transfer_properties is not sdk_patches._transfer_properties


def test_memoized_unwrap_type_answers_as_the_sdk_does():
    from collections.abc import Mapping, Sequence
    from typing import Optional

    import pulumi
    import pulumi_hcloud
    from pulumi import _types

    sdk = _types.unwrap_type
    memo = sdk_patches._memoized(sdk)
    hints = [
        # typing.Optional on purpose: the hints the provider SDKs declare.
        str, Optional[str], pulumi.Output[str], pulumi.Input[str], Optional[pulumi.Input[str]],  # noqa: UP045
        pulumi.Input[Sequence[pulumi.Input[str]]], Optional[pulumi.Input[Mapping[str, pulumi.Input[str]]]],  # noqa: UP045
        pulumi.Input["pulumi_hcloud.FirewallRuleArgs"], pulumi.Input[pulumi_hcloud.FirewallRuleArgs],
        pulumi.InputType[pulumi_hcloud.FirewallRuleArgs],
        [str],  # unhashable: answered without the memo
    ]
    for _ in range(2):  # the second round is answered from the memo
        assert [memo(h) for h in hints] == [sdk(h) for h in hints]
    assert memo(pulumi.Output[str]) is str and memo(Optional[str]) is str  # noqa: UP045


def test_monitor_calls_run_inline_on_the_loop_thread():
    """The SDK's executor calls finish before submit returns, on the caller's thread, errors included."""
    import threading

    executor = sdk_patches.InlineExecutor()
    done = executor.submit(lambda a, b=0: (a + b, threading.get_ident()), 1, b=2)
    assert done.done() and done.result() == (3, threading.get_ident())
    failed = executor.submit(lambda: 1 / 0)
    assert failed.done() and isinstance(failed.exception(), ZeroDivisionError)

    before = {t.ident for t in threading.enumerate()}
    run = engine.run_stack(load_stack(str(ROOT), "example-private"))
    assert run.error is None and len(run.resources) > 60
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert started == [], f"a stack started threads: {started}"
