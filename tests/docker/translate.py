"""Recorded pulumi-docker inputs -> Docker Engine API calls (the Docker SDK for Python's low-level API).

Every input of a ``docker:index/container:Container`` or ``docker:index/network:Network``
that ``preflight --resources`` recorded is translated by exactly one handler below; an
input without a handler (or a field of a nested input without one) raises
:class:`Untranslated`, so a new container setting cannot go unverified. Two things
differ from the host, both on purpose and both named here:

* the **image** is swapped for the local build of the same role (``odoo-hosting/role``
  label): no registry is reachable;
* bind-mount **sources** are host paths: they are looked up under ``host_root``, the
  directory that plays the host's filesystem (``/srv/odoo-data``, ``/run/odoo-hosting``,
  ``/var/log/odoo``), so the test never touches the machine's own.

How pulumi-docker (terraform-provider-docker) calls the engine, and so how this does:
the container is created attached to its first ``networks_advanced`` network (never the
default bridge), the others are connected before start; ``destroy_grace_seconds`` is the
stop timeout used when the container is removed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.types import LogConfig, Mount

ROLE_LABEL = "odoo-hosting/role"
CONTAINER_TYPE = "docker:index/container:Container"
NETWORK_TYPE = "docker:index/network:Network"


class Untranslated(AssertionError):
    """A recorded input this translator does not understand."""


def _duration_ns(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not match:
        raise Untranslated(f"duration {text!r}")
    scale = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[match.group(2)]
    return int(match.group(1)) * scale


def _only(value: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(value) - allowed
    if unknown:
        raise Untranslated(f"{what}: no translation for {sorted(unknown)}")


@dataclass
class ContainerSpec:
    """What :func:`translate_container` made of one recorded container."""

    name: str
    role: str
    recorded_image: str
    create: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)
    networks: list[tuple[str, list[str]]] = field(default_factory=list)
    stop_timeout: int = 10
    wait: bool = False
    """pulumi-docker's ``wait``: creation waits until the container is healthy."""
    wait_timeout: int = 60
    translated: set[str] = field(default_factory=set)


def _labels(spec: ContainerSpec, value: list[dict[str, str]]) -> None:
    for item in value:
        _only(item, {"label", "value"}, "labels[]")
    spec.create["labels"] = {item["label"]: item["value"] for item in value}


def _mounts(host_root: Path) -> Callable[[ContainerSpec, list[dict[str, Any]]], None]:
    def handle(spec: ContainerSpec, value: list[dict[str, Any]]) -> None:
        mounts = []
        for item in value:
            _only(item, {"target", "source", "type", "readOnly"}, "mounts[]")
            if item["type"] != "bind":
                raise Untranslated(f"mount type {item['type']!r}")
            source = host_root / item["source"].lstrip("/")
            mounts.append(Mount(target=item["target"], source=str(source), type="bind",
                                read_only=bool(item.get("readOnly", False))))
        spec.host_config["mounts"] = mounts
    return handle


def _capabilities(spec: ContainerSpec, value: dict[str, list[str]]) -> None:
    _only(value, {"adds", "drops"}, "capabilities")
    spec.host_config["cap_drop"] = list(value.get("drops", []))
    spec.host_config["cap_add"] = list(value.get("adds", []))


def _healthcheck(spec: ContainerSpec, value: dict[str, Any]) -> None:
    _only(value, {"tests", "interval", "timeout", "startPeriod", "retries"}, "healthcheck")
    spec.create["healthcheck"] = {
        "test": list(value["tests"]), "interval": _duration_ns(value["interval"]),
        "timeout": _duration_ns(value["timeout"]), "start_period": _duration_ns(value["startPeriod"]),
        "retries": int(value["retries"])}


def _networks(spec: ContainerSpec, value: list[dict[str, Any]]) -> None:
    for item in value:
        _only(item, {"name", "aliases"}, "networksAdvanced[]")
        spec.networks.append((item["name"], list(item.get("aliases", []))))


def _ports(spec: ContainerSpec, value: list[dict[str, Any]]) -> None:
    bindings: dict[str, list[tuple[str, int]]] = {}
    for item in value:
        _only(item, {"internal", "external", "ip", "protocol"}, "ports[]")
        key = f"{item['internal']}/{item.get('protocol', 'tcp')}"
        bindings.setdefault(key, []).append((item.get("ip", "0.0.0.0"), int(item["external"])))
    spec.create["ports"] = [tuple(k.split("/")) for k in bindings]
    spec.host_config["port_bindings"] = {k: v[0] if len(v) == 1 else v for k, v in bindings.items()}


def _restart(spec: ContainerSpec, value: str) -> None:
    if value not in ("no", "always", "unless-stopped", "on-failure"):
        raise Untranslated(f"restart {value!r}")
    spec.host_config["restart_policy"] = {"Name": value}


def _log(spec: ContainerSpec, inputs: Mapping[str, Any]) -> None:
    spec.host_config["log_config"] = LogConfig(type=inputs["logDriver"], config=dict(inputs.get("logOpts", {})))


def _set(target: str, key: str, convert: Callable[[Any], Any] = lambda v: v):
    def handle(spec: ContainerSpec, value: Any) -> None:
        getattr(spec, target)[key] = convert(value)
    return handle


def _needs(inputs: Mapping[str, Any], other: str, key: str) -> None:
    if other not in inputs:
        raise Untranslated(f"{key} without {other}")


def _grace(spec: ContainerSpec, value: int) -> None:
    spec.stop_timeout = int(value)


def _name(spec: ContainerSpec, value: str) -> None:
    spec.name = value


def autoname(logical_name: str) -> str:
    """A name as Pulumi's auto-naming makes one: the logical name and a random suffix."""
    return f"{logical_name}-{secrets.token_hex(4)[:7]}"


def translate_container(inputs: Mapping[str, Any], images: Mapping[str, str], host_root: Path,
                        logical_name: str | None = None) -> ContainerSpec:
    """The engine calls for one recorded container; ``images`` maps role -> local image. Without
    a ``name`` input the container is auto-named from ``logical_name``, as Pulumi does."""
    labels = {item["label"]: item["value"] for item in inputs.get("labels", [])}
    role = labels.get(ROLE_LABEL)
    if role not in images:
        raise Untranslated(f"no local image for role {role!r}")
    if "name" not in inputs and not logical_name:
        raise Untranslated("a container without a name input needs its logical name (auto-naming)")
    spec = ContainerSpec(name=inputs.get("name") or autoname(str(logical_name)), role=role,
                         recorded_image=inputs["image"])
    spec.create["image"] = images[role]
    handlers: dict[str, Callable[[ContainerSpec, Any], None]] = {
        "name": _name,
        "image": lambda s, v: None,  # swapped above: the only input not applied as recorded
        "labels": _labels,
        "envs": _set("create", "environment", list),
        "entrypoints": _set("create", "entrypoint", list),
        "command": _set("create", "command", list),
        "user": _set("create", "user"),
        "stopSignal": _set("create", "stop_signal"),
        "mounts": _mounts(host_root),
        "tmpfs": _set("host_config", "tmpfs", dict),
        "shmSize": _set("host_config", "shm_size", lambda mb: int(mb) * 1024 * 1024),  # pulumi-docker: MB
        "capabilities": _capabilities,
        "privileged": _set("host_config", "privileged", bool),
        "readOnly": _set("host_config", "read_only", bool),
        "securityOpts": _set("host_config", "security_opt", list),
        "sysctls": _set("host_config", "sysctls", dict),
        "restart": _restart,
        "logDriver": lambda s, v: _log(s, inputs),
        "logOpts": lambda s, v: _needs(inputs, "logDriver", "logOpts"),  # applied with logDriver
        "healthcheck": _healthcheck,
        "networksAdvanced": _networks,
        "ports": _ports,
        "destroyGraceSeconds": _grace,
        "wait": lambda s, v: setattr(s, "wait", bool(v)),
        "waitTimeout": lambda s, v: setattr(s, "wait_timeout", int(v)),
    }
    for key, value in inputs.items():
        if key not in handlers:
            raise Untranslated(f"container {inputs.get('name')!r}: no translation for input {key!r}")
        handlers[key](spec, value)
        spec.translated.add(key)
    if not spec.networks:
        raise Untranslated(f"container {spec.name!r} has no networks_advanced (would join the default bridge)")
    return spec


def translate_network(inputs: Mapping[str, Any]) -> dict[str, Any]:
    _only(inputs, {"name", "internal", "labels"}, f"network {inputs.get('name')!r}")
    return {"name": inputs["name"], "driver": "bridge", "internal": bool(inputs.get("internal", False)),
            "labels": {item["label"]: item["value"] for item in inputs.get("labels", [])}}


def create_network(client: docker.DockerClient, inputs: Mapping[str, Any]) -> str:
    network: dict[str, Any] = client.api.create_network(**translate_network(inputs))
    return str(network["Id"])


def create_container(client: docker.DockerClient, spec: ContainerSpec, start: bool = True) -> str:
    """Create (and start) the container as the provider does; returns its id."""
    api = client.api
    first, first_aliases = spec.networks[0]
    host_config = api.create_host_config(network_mode=first, **spec.host_config)
    networking = api.create_networking_config({first: api.create_endpoint_config(aliases=first_aliases or None)})
    created = api.create_container(name=spec.name, host_config=host_config, networking_config=networking,
                                   **spec.create)
    container_id = str(created["Id"])
    for name, aliases in spec.networks[1:]:
        api.connect_container_to_network(container_id, name, aliases=aliases or None)
    if start:
        api.start(container_id)
    return container_id


def remove_container(client: docker.DockerClient, name: str, stop_timeout: int) -> None:
    """Delete as the provider does: stop with the grace period, then remove."""
    client.api.stop(name, timeout=stop_timeout)
    client.api.remove_container(name, v=True, force=True)
