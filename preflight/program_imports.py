"""Importing a program's own modules afresh for every stack, with their bytecode in a private cache.

Each stack imports the program's modules anew (a component module that reads
config at import time must see this stack's values); installed packages and
preflight itself stay imported. While ``program_bytecode_cache`` is active,
program modules' bytecode is kept in preflight's cache directory, so each is
compiled once per run instead of once per stack.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import os
import sys
from collections.abc import Iterator
from typing import Any

_PROTECTED_ROOTS = (os.path.dirname(os.path.abspath(__file__)),)


class _CachedSourceLoader(importlib.machinery.SourceFileLoader):
    """A program module's loader that keeps its bytecode in preflight's own cache directory.

    Only program modules go there: installed packages keep using the
    ``__pycache__`` their installer wrote (a global ``sys.pycache_prefix``
    would ignore those and recompile every package the program imports)."""

    cache_dir: str | None = None
    # (source path, mtime, size) -> code object. Every stack imports the
    # program afresh, but a module's code is the same while its source is:
    # the module body still runs anew each time, only reading and
    # unmarshalling the bytecode (a twentieth of a stack) is spared.
    # Code objects are immutable, so sharing them shares no state.
    _code: dict[tuple[str, float, int | None], Any] = {}

    def get_code(self, fullname: str) -> Any:
        if self.cache_dir is None:
            return super().get_code(fullname)
        source_path = self.get_filename(fullname)
        try:
            stats = self.path_stats(source_path)
            key = (source_path, stats["mtime"], stats.get("size"))
        except OSError:
            key = None
        code = self._code.get(key) if key is not None else None
        if code is not None:
            return code
        saved = sys.pycache_prefix, sys.dont_write_bytecode
        sys.pycache_prefix, sys.dont_write_bytecode = self.cache_dir, False
        try:
            code = super().get_code(fullname)
        finally:
            sys.pycache_prefix, sys.dont_write_bytecode = saved
        if key is not None and code is not None:
            self._code[key] = code
        return code


_PROGRAM_ROOTS: set[str] = set()


def _in_program(path: str) -> bool:
    path = os.path.abspath(path)
    if "site-packages" in path or any(path == p or path.startswith(p + os.sep) for p in _PROTECTED_ROOTS):
        return False
    return any(path == root or path.startswith(root + os.sep) for root in _PROGRAM_ROOTS)


def _program_path_hook(path: str) -> importlib.machinery.FileFinder:
    # Directories only: runpy asks the path hooks about the entry file too.
    if not _in_program(path) or not os.path.isdir(path):
        raise ImportError("not a program directory")
    loaders = [(_CachedSourceLoader if loader is importlib.machinery.SourceFileLoader else loader, suffixes)
               for loader, suffixes in _SUPPORTED_LOADERS]
    return importlib.machinery.FileFinder(path, *loaders)


_SUPPORTED_LOADERS = [
    (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
    (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
]


def _forget_program_finders() -> None:
    """Drop cached finders of program directories, so the next import asks the path hooks again."""
    for path in list(sys.path_importer_cache):
        if _in_program(path):
            del sys.path_importer_cache[path]


def add_program_root(program_dir: str) -> None:
    root = os.path.abspath(program_dir)
    if root in _PROGRAM_ROOTS:
        return
    _PROGRAM_ROOTS.add(root)
    # Finders made before the root was known would keep the default loader.
    _forget_program_finders()


@contextlib.contextmanager
def program_bytecode_cache(cache_dir: str) -> Iterator[None]:
    """While active, program modules' bytecode is written to and read from ``cache_dir``."""
    sys.path_hooks.insert(0, _program_path_hook)
    _CachedSourceLoader.cache_dir = cache_dir
    _forget_program_finders()
    try:
        yield
    finally:
        _CachedSourceLoader.cache_dir = None
        _CachedSourceLoader._code.clear()
        with contextlib.suppress(ValueError):
            sys.path_hooks.remove(_program_path_hook)
        _forget_program_finders()


def purge_program_modules(program_dir: str) -> dict[str, Any]:
    """Forget modules loaded from a program dir so the next run imports them afresh; return them.

    A component module that reads config at import time would otherwise keep the
    previous stack's values. Installed packages (a `.venv` inside the program
    dir) and preflight itself are kept: they are stack-independent and slow to import.
    """
    root = os.path.abspath(program_dir) + os.sep
    purged = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and _purgeable(path if os.path.isabs(path) else os.path.abspath(path), root):
            purged[name] = sys.modules.pop(name)
    return purged


@functools.cache
def _purgeable(path: str, root: str) -> bool:
    # Cached: the same few thousand module paths are asked about before and
    # after every stack, and for an absolute path the answer depends on the
    # strings alone.
    path = os.path.normpath(path)
    if not path.startswith(root) or "site-packages" in path:
        return False
    return not any(path.startswith(p + os.sep) for p in _PROTECTED_ROOTS)

