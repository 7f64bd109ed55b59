"""ISO-02 (container isolation) and SWU-01 (images pinned by digest) for pulumi-docker.

A container's role is read from its labels (``odoo-hosting/role``: ``proxy``
may publish ports; ``database`` never), falling back to its name for the
database, so a hand-written ``postgres`` container is judged too.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import (
    ADMIN_PORTS,
    as_list,
    as_number,
    config_string,
    container_labels,
    get,
    in_client,
    is_true,
    resource_policy,
)

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
SERVICE = "docker:index/service:Service"

DEFAULT_ROLE_LABEL = "odoo-hosting/role"
PROXY_ROLE = "proxy"
DATABASE_ROLE = "database"
_DATABASE_NAME = re.compile(r"(postgres|postgresql|pgsql|mysql|mariadb|mongo|redis|database|(^|[-_])db($|[-_]))",
                            re.IGNORECASE)
DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH"})
# Mounting one of these hands the container the Docker socket (root on the host).
_SOCKET_DIRS = ("/", "/var", "/var/run", "/run", "/run/docker", "/var/run/docker")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

_CONFIG = {
    "roleLabelKey": {
        "type": "string", "minLength": 1, "default": DEFAULT_ROLE_LABEL,
        "description": "Container label whose value is the container's role (proxy, app, database).",
    },
}


def _role(props: Mapping[str, Any], key: str) -> str | None:
    value = container_labels(props).get(key)
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _is_socket_path(path: Any) -> bool:
    if not isinstance(path, str) or not path.strip():
        return False
    norm = posixpath.normpath("/" + path.strip().lstrip("/"))
    return norm in _SOCKET_DIRS or (norm.endswith(".sock") and ("docker" in norm or "containerd" in norm))


def _host_paths(props: Mapping[str, Any]) -> list[str]:
    paths = []
    for volume in as_list(get(props, "volumes")):
        if isinstance(volume, Mapping):
            paths.append(get(volume, "hostPath"))
    for mount in as_list(get(props, "mounts")):
        if isinstance(mount, Mapping) and str(get(mount, "type", "bind")).strip().lower() == "bind":
            paths.append(get(mount, "source"))
    return [p for p in paths if isinstance(p, str)]


def _no_new_privileges(opts: list[Any]) -> bool:
    for opt in opts:
        text = str(opt).strip().lower().replace(" ", "")
        if text in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            return True
    return False


def container_problems(props: Mapping[str, Any], role_key: str, client: bool = True) -> list[str]:
    problems = []
    if is_true(get(props, "privileged")):
        problems.append("privileged is true, which gives the container every capability and the host's "
                        "devices; remove privileged")
    for key in ("networkMode", "pidMode", "ipcMode", "usernsMode"):
        value = get(props, key)
        if isinstance(value, str) and value.strip().lower() == "host":
            problems.append(f"{key} is 'host', so the container shares the host's namespace; remove {key} "
                            "(use a user-defined network)")
    for path in _host_paths(props):
        if _is_socket_path(path):
            problems.append(f"it mounts the host path '{path}', which holds or contains the Docker socket "
                            "(root on the host); remove that volume/mount")
    if not _no_new_privileges(as_list(get(props, "securityOpts"))):
        problems.append("securityOpts lacks 'no-new-privileges:true', so setuid binaries can raise "
                        "privileges; add it to securityOpts")
    caps = get(props, "capabilities")
    adds = as_list(get(caps, "adds")) if isinstance(caps, Mapping) else []
    bad = _dangerous(adds)
    if bad:
        problems.append(f"capabilities.adds grants {', '.join(bad)}; remove them")
    role = _role(props, role_key)
    name = get(props, "name")
    is_db = role == DATABASE_ROLE or (role is None and isinstance(name, str) and bool(_DATABASE_NAME.search(name)))
    ports = as_list(get(props, "ports"))
    publishes = bool(ports) or is_true(get(props, "publishAllPorts"))
    if publishes and is_db:
        problems.append("the database container publishes ports; remove ports (the app reaches it over the "
                        "container network)")
    elif publishes and not client:
        problems.extend(published_admin_ports(ports))
    elif publishes and role != PROXY_ROLE:
        problems.append(f"the container publishes ports but is not the TLS proxy (label {role_key}=proxy); "
                        "remove ports and route through the proxy")
    return problems


def published_admin_ports(ports: list[Any]) -> list[str]:
    """Outside a client stack: a published admin or database port on a non-loopback address."""
    problems = []
    for port in ports:
        if not isinstance(port, Mapping):
            continue
        inner = as_number(get(port, "internal"))
        outer = as_number(get(port, "external")) or inner
        ip = str(get(port, "ip", "0.0.0.0")).strip()
        if ip.startswith("127.") or ip in ("::1", "localhost"):
            continue
        hit = {int(p) for p in (inner, outer) if p is not None} & ADMIN_PORTS
        if hit:
            problems.append(f"it publishes admin/database port {', '.join(map(str, sorted(hit)))} on {ip}, "
                            "reachable from every network the host is on; bind it to 127.0.0.1 (ip) or drop "
                            "the port")
    return problems


def _dangerous(capabilities: list[Any]) -> list[str]:
    return sorted({str(c).strip().upper().removeprefix("CAP_") for c in capabilities} & DANGEROUS_CAPABILITIES)


def service_problems(props: Mapping[str, Any]) -> list[str]:
    """A swarm service: the same isolation through its task spec (mounts, capabilities, published ports:
    swarm publishes on every node's interfaces)."""
    task = get(props, "taskSpec")
    spec = get(task, "containerSpec") if isinstance(task, Mapping) else None
    problems = []
    if isinstance(spec, Mapping):
        for mount in as_list(get(spec, "mounts")):
            source = get(mount, "source") if isinstance(mount, Mapping) else None
            if str(get(mount, "type", "bind")).strip().lower() == "bind" and _is_socket_path(source):
                problems.append(f"its task mounts the host path '{source}', which holds or contains the Docker "
                                "socket (root on every node); remove that mount")
        bad = _dangerous(as_list(get(spec, "capabilityAdds")))
        if bad:
            problems.append(f"containerSpec.capabilityAdds grants {', '.join(bad)}; remove them")
    endpoint = get(props, "endpointSpec")
    ports = [{"internal": get(p, "targetPort"), "external": get(p, "publishedPort")}
             for p in as_list(get(endpoint, "ports") if isinstance(endpoint, Mapping) else None)
             if isinstance(p, Mapping)]
    return problems + published_admin_ports(ports)


def _validate_container(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == SERVICE:
        for problem in service_problems(args.props):
            report_violation(f"service: {problem}.", None)
        return
    key = config_string(args, "roleLabelKey", DEFAULT_ROLE_LABEL)
    for problem in container_problems(args.props, key, in_client(args)):
        report_violation(f"container: {problem}.", None)


docker_container_isolated = resource_policy(
    name="docker-container-isolated",
    description="Checks that Docker containers (and swarm services: mounts, capabilities, published ports) are "
                "not privileged, share no host network/PID/IPC/user "
                "namespace, mount no Docker socket (or its directory), set no-new-privileges, add no "
                "dangerous capability, and publish no database port; in any program no admin or database "
                "port on a non-loopback address, in a client stack only the TLS proxy publishes ports.",
    controls=["ISO-02"],
    severity=Severity.CRITICAL,
    remediation="Run containers unprivileged on a user-defined network with security_opts="
                "['no-new-privileges:true'], no Docker socket mount and no added capabilities; publish "
                "ports only on the proxy (labelled odoo-hosting/role=proxy).",
    validate=_validate_container,
    applies_to=(CONTAINER, SERVICE),
    config=_CONFIG,
    scope="mixed",
)


def _validate_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == CONTAINER:
        key = "image"
    elif args.resource_type == REMOTE_IMAGE:
        key = "name"
    else:
        return
    image = get(args.props, key)
    # A container whose image is a RemoteImage's id (sha256:...) is pinned when the RemoteImage is.
    if isinstance(image, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", image.strip()):
        return
    if not isinstance(image, str) or not _DIGEST.search(image.strip()):
        report_violation(
            f"{key} '{image}' is not pinned by digest, so a re-pushed tag changes what runs; set {key} to "
            "<image>:<tag>@sha256:<64 hex digits>.", None)


docker_image_pinned = resource_policy(
    name="docker-image-pinned-by-digest",
    description="Checks that Docker containers and remote images name their image by digest "
                "(@sha256:<64 hex>).",
    controls=["SWU-01"],
    severity=Severity.MEDIUM,
    remediation="Pin every image as repository:tag@sha256:<digest>; update digests through a reviewed change.",
    validate=_validate_digest,
    applies_to=(CONTAINER, REMOTE_IMAGE),
)
