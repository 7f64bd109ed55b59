"""Stack files read safely (issue 16): no alias bomb, no silent duplicate key, a non-UTF-8 file is
an error for that stack only, naming the file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.settings import stack_yaml
from preflight import PreflightError
from preflight.project import load_stack
from tests.conftest import ROOT

# The classic "billion laughs": 9 levels of 9 aliases, about 500 bytes, 9^9 strings once expanded.
ALIAS_BOMB = "config:\n  odoo-hosting:domains: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  odoo-hosting:l{i}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def _program(tmp_path: Path, **stacks: bytes) -> Path:
    (tmp_path / "Pulumi.yaml").write_bytes((ROOT / "Pulumi.yaml").read_bytes())
    (tmp_path / "__main__.py").write_text("")
    for name, content in stacks.items():
        (tmp_path / f"Pulumi.{name}.yaml").write_bytes(content)
    return tmp_path


def _refusal(tmp_path: Path, content: str | bytes) -> tuple[Path, str]:
    """(the file, the loader's error message) for a stack file that must be refused."""
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(stack_yaml.StackFileError) as caught:
        stack_yaml.load_file(str(path))
    return path, str(caught.value)


def test_the_alias_bomb_is_refused_before_expansion(tmp_path):
    assert len(ALIAS_BOMB) < 600
    started = time.perf_counter()
    path, message = _refusal(tmp_path, ALIAS_BOMB)
    assert time.perf_counter() - started < 5  # generous: the refusal is immediate, expansion would take hours
    assert str(path) in message and "line 2" in message and "anchors" in message


def test_plain_pyyaml_would_have_expanded_it():
    """The bomb is real: the safe loader refuses what yaml.safe_load builds (as shared lists)."""
    import yaml
    data = yaml.safe_load(ALIAS_BOMB)
    inner = data["config"]["odoo-hosting:l7"]
    assert len(inner) == 9 and len(inner[0]) == 9  # 9^9 leaves once serialised


def test_a_single_anchor_is_refused_too(tmp_path):
    assert "anchors" in _refusal(tmp_path, "config:\n  odoo-hosting:vpn: &v {port: 51820}\n")[1]


def test_duplicate_keys_are_an_error_naming_file_and_lines(tmp_path):
    path, message = _refusal(tmp_path, "config:\n  odoo-hosting:adminUser: ops\n  odoo-hosting:location: fsn1\n"
                                       "  odoo-hosting:adminUser: root\n")
    assert str(path) in message and "odoo-hosting:adminUser" in message
    assert "line 4" in message and "first at line 2" in message


def test_duplicate_keys_in_a_nested_mapping_are_an_error(tmp_path):
    assert "duplicate key 'port'" in _refusal(tmp_path, "config:\n  odoo-hosting:vpn:\n    port: 1\n    port: 2\n")[1]


def test_a_non_utf8_file_is_an_error_naming_it_without_its_content(tmp_path):
    path, message = _refusal(tmp_path, b"config:\n  odoo-hosting:adminUser: jos\xe9-Hunter2\n")
    assert str(path) in message and "line 2" in message and "not UTF-8" in message
    assert "Hunter2" not in message


def test_a_good_stack_file_loads_as_before():
    import yaml
    path = ROOT / "Pulumi.example-public.yaml"
    assert stack_yaml.load_file(str(path)) == yaml.safe_load(path.read_text())


def test_preflight_reports_a_bad_file_for_that_stack_only(tmp_path):
    good = (ROOT / "Pulumi.example-public.yaml").read_bytes()
    program = _program(tmp_path, good=good, latin=good.replace(b"ops@", b"op\xe9@"),
                       bomb=ALIAS_BOMB.encode(), dup=good + b"  odoo-hosting:location: nbg1\n")
    assert load_stack(str(program), "good").config["odoo-hosting:clientId"] == "acme-shop"
    for stack, problem in (("latin", "not UTF-8"), ("bomb", "anchors"), ("dup", "duplicate key")):
        with pytest.raises(PreflightError) as caught:
            load_stack(str(program), stack)
        assert f"Pulumi.{stack}.yaml" in str(caught.value) and problem in str(caught.value)


def test_preflight_run_goes_on_past_a_non_utf8_stack(tmp_path):
    """The whole run: the bad stack is one ERROR line naming its file, the good one is previewed."""
    good = (ROOT / "Pulumi.example-private.yaml").read_bytes()
    program = _program(tmp_path, good=good, latin=good.replace(b"# A", b"# \xff"))
    for entry in ("components", "policies"):
        (program / entry).symlink_to(ROOT / entry)
    (program / "__main__.py").write_bytes((ROOT / "__main__.py").read_bytes())
    result = subprocess.run([sys.executable, "-m", "preflight", "--program", str(program)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert "Pulumi.latin.yaml: not UTF-8" in result.stdout + result.stderr, result.stderr[-2000:]
    assert "UnicodeDecodeError" not in result.stderr
    assert "good" in result.stdout and result.returncode == 2, result.stdout[-2000:]
