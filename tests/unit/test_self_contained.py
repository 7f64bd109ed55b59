"""The repository stands alone: no file refers to anything outside it.

A clone placed anywhere (no shared folder beside it, no build machine's paths)
must preview and test; this scans every tracked text file for references
that would only resolve on the machine it was written on."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

# The workplace's folders, spelt in parts so that this file does not name them itself.
_WORKPLACE = "/" + "work" + "/"
OUTSIDE = re.compile(r"\.\./shared|" + _WORKPLACE + r"|/opt/(?:pypi|wheels)|file:///opt|/root/\.(?:pyenv|cache)/")
ALLOWED = {"tests/unit/test_self_contained.py"}


def _tracked() -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


def test_no_file_refers_outside_the_repository():
    found = []
    for name in _tracked():
        path = ROOT / name
        if name in ALLOWED or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{n}: {line.strip()[:100]}" for n, line in enumerate(text.splitlines(), 1)
                  if OUTSIDE.search(line)]
    assert found == []


def test_the_scan_sees_a_reference():
    sibling = ".." + "/shared"
    assert OUTSIDE.search(f"see {sibling}/controls.md") and OUTSIDE.search(f"Path('{_WORKPLACE}x')")
    assert not OUTSIDE.search("docs/controls.md")
