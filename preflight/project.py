"""Reading `Pulumi.yaml` and `Pulumi.<stack>.yaml` into the config a program sees."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from . import SECRET_PLACEHOLDER, PreflightError


def _load_stack_yaml_module() -> Any:
    """components/settings/stack_yaml.py, the one safe stack-file loader, loaded by its path under a
    private name: importing the `components` package here would shadow a program's own `components`."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "components", "settings", "stack_yaml.py")
    spec = importlib.util.spec_from_file_location("_preflight_stack_yaml", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack_yaml = _load_stack_yaml_module()


@dataclass
class StackConfig:
    """Everything the runtime needs to run one stack of a program."""

    program_dir: str
    project: str
    stack: str
    main: str
    """Entry file (a .py file) of the program."""
    config: dict[str, str] = field(default_factory=dict)
    """Namespaced keys -> values as the CLI passes them (scalars as strings, objects as JSON)."""
    secret_keys: list[str] = field(default_factory=list)
    virtualenv: str = ""
    """The program's own virtualenv (absolute), from ``runtime.options.virtualenv`` / toolchain; "" for none."""


def _load_yaml(path: str) -> dict[str, Any]:
    # The one safe stack-file loader (no aliases, no duplicate keys, UTF-8 only), shared with the program.
    try:
        data = stack_yaml.load_file(path)
    except FileNotFoundError:
        raise PreflightError(f"{path}: file not found") from None
    except stack_yaml.StackFileError as e:
        raise PreflightError(str(e)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PreflightError(f"{path}: expected a mapping at top level")
    return data


def _qualify(key: str, project: str) -> str:
    # Unnamespaced keys belong to the project, as with `pulumi config set`.
    return key if ":" in key else f"{project}:{key}"


def _to_config_string(value: Any) -> str:
    """Encode a value the way the CLI hands config to a program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if value is None:
        return ""
    return str(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _mask_secure(value: Any, key: str, path: str = "") -> tuple[object, bool]:
    """Replace `{secure: ...}` values (also nested ones) by placeholders."""
    if _is_secure(value):
        return f"{SECRET_PLACEHOLDER}-{key}{path}", True
    if isinstance(value, dict):
        found = False
        out = {}
        for k, v in value.items():
            out[k], f = _mask_secure(v, key, f"{path}.{k}")
            found = found or f
        return out, found
    if isinstance(value, list):
        found = False
        out_list = []
        for i, v in enumerate(value):
            masked, f = _mask_secure(v, key, f"{path}[{i}]")
            out_list.append(masked)
            found = found or f
        return out_list, found
    return value, False


def project_info(program_dir: str) -> dict[str, Any]:
    """The parsed `Pulumi.yaml` of a program directory (read once per run)."""
    return _project_info(os.path.abspath(program_dir), _mtime(os.path.join(program_dir, "Pulumi.yaml")))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=64)
def _project_info(program_dir: str, _mtime_key: float) -> dict[str, Any]:
    data = _load_yaml(os.path.join(program_dir, "Pulumi.yaml"))
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise PreflightError(f"{os.path.join(program_dir, 'Pulumi.yaml')}: missing project `name`")
    return data


def discover_stacks(program_dir: str) -> list[str]:
    """Names of every `Pulumi.<stack>.yaml` in the program directory, sorted."""
    stacks = []
    for entry in os.listdir(program_dir):
        if entry.startswith("Pulumi.") and entry.endswith((".yaml", ".yml")):
            middle = entry[len("Pulumi.") : entry.rindex(".")]
            if middle:
                stacks.append(middle)
    return sorted(set(stacks))


def _main_file(program_dir: str, info: dict[str, Any]) -> str:
    main = info.get("main")
    path = os.path.join(program_dir, main) if main else program_dir
    if os.path.isdir(path):
        path = os.path.join(path, "__main__.py")
    if not os.path.isfile(path):
        raise PreflightError(f"program entry point {path} not found")
    return path


def _virtualenv(program_dir: str, info: dict[str, Any]) -> str:
    """The virtualenv the program's ``Pulumi.yaml`` runs it with, as the language host picks it."""
    runtime = info.get("runtime")
    options = runtime.get("options") if isinstance(runtime, dict) else None
    if not isinstance(options, dict):
        return ""
    toolchain = str(options.get("toolchain") or "pip")
    venv = options.get("virtualenv")
    if toolchain == "uv" and not venv:
        venv = ".venv"  # uv's own default, as the language host uses it
    if toolchain == "poetry" and not venv:
        return _poetry_virtualenv(program_dir)
    if toolchain not in ("pip", "uv", "poetry"):
        raise PreflightError(f"Pulumi.yaml: runtime toolchain {toolchain!r} is not one preflight knows "
                             "(pip, uv, poetry)")
    return os.path.join(program_dir, str(venv)) if venv else ""


_POETRY_ENVS: dict[str, str] = {}


def _poetry_virtualenv(program_dir: str) -> str:
    """The environment poetry keeps for the program, asked as the language host asks it
    (``poetry env info --path`` in the program's directory; local, no network): once per program."""
    known = _POETRY_ENVS.get(program_dir)
    if known is not None:
        return known
    poetry = shutil.which("poetry")
    if poetry is None:
        raise PreflightError("Pulumi.yaml: runtime toolchain poetry, but `poetry` is not on PATH: install it "
                             "and `poetry install` the program, or name its environment with "
                             "runtime.options.virtualenv")
    try:
        proc = subprocess.run([poetry, "env", "info", "--path"], cwd=program_dir, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PreflightError(f"Pulumi.yaml: runtime toolchain poetry: `poetry env info --path` failed: {e}") from None
    path = proc.stdout.strip()
    if proc.returncode != 0 or not path:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise PreflightError(f"Pulumi.yaml: runtime toolchain poetry: `poetry env info --path` gave no "
                             f"environment for {program_dir} ({why}): run `poetry install` there")
    _POETRY_ENVS[program_dir] = path
    return path


def load_stack(program_dir: str, stack: str) -> StackConfig:
    """Build the config of one stack: project defaults, then the stack file."""
    program_dir = os.path.abspath(program_dir)
    info = project_info(program_dir)
    project = info["name"]
    config: dict[str, str] = {}
    secret_keys: list[str] = []

    project_config = info.get("config") or {}
    if not isinstance(project_config, dict):
        raise PreflightError("Pulumi.yaml: `config` must be a mapping")
    for key, spec in project_config.items():
        full = _qualify(str(key), project)
        # A schema object declares a type; its default/value (if any) is the value.
        if isinstance(spec, dict) and ("type" in spec or "default" in spec or "value" in spec):
            if "value" in spec:
                config[full] = _to_config_string(spec["value"])
            elif "default" in spec:
                config[full] = _to_config_string(spec["default"])
        else:
            config[full] = _to_config_string(spec)

    stack_file = None
    for ext in (".yaml", ".yml"):
        candidate = os.path.join(program_dir, f"Pulumi.{stack}{ext}")
        if os.path.isfile(candidate):
            stack_file = candidate
            break
    if stack_file is None:
        raise PreflightError(f"Pulumi.{stack}.yaml not found in {program_dir}")
    stack_data = _load_yaml(stack_file)
    stack_config = stack_data.get("config") or {}
    if not isinstance(stack_config, dict):
        raise PreflightError(f"{stack_file}: `config` must be a mapping")
    for key, value in stack_config.items():
        full = _qualify(str(key), project)
        value, is_secret = _mask_secure(value, full)
        config[full] = _to_config_string(value)
        if is_secret:
            secret_keys.append(full)

    return StackConfig(
        program_dir=program_dir,
        project=project,
        stack=stack,
        main=_main_file(program_dir, info),
        config=config,
        secret_keys=sorted(secret_keys),
        virtualenv=_virtualenv(program_dir, info),
    )
