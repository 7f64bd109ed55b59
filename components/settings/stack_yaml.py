"""Reading a ``Pulumi.<stack>.yaml`` (or ``Pulumi.yaml``) safely: the one YAML loader for stack files.

- **No aliases or anchors.** They are refused from the event stream, before anything is
  built: a 500-byte "billion laughs" file would otherwise expand into gigabytes when the
  config is serialised. Stack files never need them.
- **No duplicate keys.** YAML keeps the last one silently; here it is an error naming the
  file and both lines.
- **UTF-8 only.** A file that does not decode is an error naming that file (the caller
  reports it for that stack only), never a ``UnicodeDecodeError`` that ends the run.
- Safe tags only (``SafeLoader``); libyaml's parser when PyYAML has it (fleets of stacks).
"""

from __future__ import annotations

from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_STACK_FILE_BYTES = 1 << 20
"""A stack file is a few KiB; a larger one is refused before it is parsed."""


class StackFileError(ValueError):
    """A stack file that cannot be read as plain, unambiguous YAML. The message names the file
    (and the line) and never quotes the file's content."""


def _where(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class _StrictLoader(_Loader):  # type: ignore[misc]
    """SafeLoader whose mappings refuse duplicate keys."""

    path = "<stack file>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeConstructor reports it below
                break
            if first is not None:
                raise StackFileError(f"{self.path}: duplicate key {ascii(str(key)[:60])}{_where(key_node.start_mark)}"
                                     f", first at line {first.line + 1}: YAML would keep only the last one")
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def loads(text: str, path: str) -> Any:
    """Parse one YAML document of a stack file (``path`` only names it in errors)."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise StackFileError(f"{path}: YAML anchors and aliases are not allowed in stack files"
                                     f"{_where(event.start_mark)}")
        loader = type("Loader", (_StrictLoader,), {"path": path})
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise StackFileError(f"{path}: invalid YAML{_where(mark)}: {problem}") from None


def load_file(path: str) -> Any:
    """Read and parse a stack file; :class:`StackFileError` (naming ``path``) on anything unsafe."""
    with open(path, "rb") as f:
        data = f.read(MAX_STACK_FILE_BYTES + 1)
    if len(data) > MAX_STACK_FILE_BYTES:
        raise StackFileError(f"{path}: larger than {MAX_STACK_FILE_BYTES} bytes; not a stack file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise StackFileError(f"{path}: not UTF-8 (byte {e.start}, line {line}); save the file as UTF-8") from None
    return loads(text, path)
