"""The app plane on the client's host: PostgreSQL, Odoo and the Caddy TLS proxy.

Docker provider: ``ssh://<adminUser>@<VPN host address>``. Pulumi runs on an
operator machine (or CI runner) that is a WireGuard peer of the client's VPN;
the Docker CLI's SSH transport uses the system ``ssh`` (the operator's agent,
strict host-key checking against the Pulumi-made host key, see
:mod:`components.hostkeys`) and runs ``docker system dial-stdio`` on the host as
the admin user (a member of the ``docker`` group). Nothing Docker-related
listens on a network port. The provider's ``host`` is derived from the
server's id, so on a first preview (no server yet) it is unknown and Pulumi
does not try to connect; it also ``depends_on`` the whole Host component
(server, private NIC, data-volume attachment), so no container is created
before the server and its data volume exist. (The host still needs its first
boot: Docker installed, WireGuard up, LUKS volume opened; a ``pulumi up``
that runs before that fails cleanly at the first container and is re-run.)

Every container: not privileged, no host namespaces, no Docker socket,
``no-new-privileges``, all capabilities dropped (PostgreSQL gets back only
what its entrypoint needs to chown its data and step down to the postgres
user), read-only root filesystem with tmpfs for scratch paths, a healthcheck,
``restart: unless-stopped``, log size limits. Replacement (CD-01): Odoo is created before
the old one is deleted, and only once healthy (``wait``); PostgreSQL (its data directory) and
the proxy (its fixed host ports) are ``delete_before_replace``. Only the proxy publishes ports.
Secrets arrive as read-only single-file bind mounts from the host's tmpfs
(:mod:`components.app.secrets`), never as inputs. Config that is not secret
(Caddyfile, odoo.conf) is an environment variable the entrypoint writes to a
tmpfs file: known at preview, so the policy pack judges it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import pulumi
import pulumi_docker as docker

from components.hostconfig.paths import DATA_MOUNT_POINT, ODOO_LOG_DIR
from components.settings import OutsideConnection, Sso

from .images import CADDY_IMAGE, POSTGRES_IMAGE
from .odoo_conf import (
    ADMIN_PASSWORD_NAME,
    DB_HOST,
    DB_PASSWORD_NAME,
    DB_USER,
    ODOO_DATA_DIR,
    SMTP_PASSWORD_NAME,
    odoo_secrets_program,
)
from .secrets import DB_PASSWORD, ODOO_ADMIN_PASSWORD, ORIGIN_CERT, ORIGIN_KEY, SMTP_PASSWORD, host_file

ROLE_LABEL = "odoo-hosting/role"
SSO_LABEL = "odoo-hosting/sso"
"""JSON of the SSO configuration (no secrets): the ACC-05 policy checks LDAP's transport."""
CONNECTIONS_LABEL = "odoo-hosting/outside-connections"
"""JSON list of the outside systems Odoo is configured to reach (TLS-03 policy reads it)."""
CADDYFILE_ENV = "CADDYFILE"
ODOO_CONF_ENV = "ODOO_CONF"
ODOO_MODULES_ENV = "ODOO_HOSTING_MODULES"
PROXY_DATA_DIR = f"{DATA_MOUNT_POINT}/proxy"
"""ACME account and certificate keys, on the LUKS volume."""
ORIGIN_CERT_PATH = "/run/secrets/origin.crt"
ORIGIN_KEY_PATH = "/run/secrets/origin.key"
NO_NEW_PRIVILEGES = "no-new-privileges:true"
RESTART = "unless-stopped"
ODOO_WAIT_SECONDS = 300
"""How long a replacement Odoo may take to become healthy (start period 120 s, then 3 checks 30 s
apart) before `pulumi up` fails and the old container keeps serving."""
POSTGRES_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID")
"""The postgres entrypoint chowns its data directory and steps down to the postgres user (gosu)."""

# The entrypoints write the non-secret config to tmpfs and exec the server.
CADDY_START = ('umask 077 && printf "%s" "$CADDYFILE" > /run/caddy/Caddyfile'
               " && exec caddy run --config /run/caddy/Caddyfile --adapter caddyfile")
SECRETS_MOUNT = "/run/secrets"
ODOO_CONF_PATH = "/run/odoo/odoo.conf"
ODOO_START = (
    f'set -eu; umask 077; printf "%s" "$ODOO_CONF" > {ODOO_CONF_PATH}; '
    # Refuses to start without its secret files: Odoo would fall back to the master password "admin".
    'python3 -c "$ODOO_HOSTING_SECRETS_PROGRAM"; '
    # Install base and the SSO modules once per module set (a marker on the data volume).
    'marker=/var/lib/odoo/.odoo-hosting-modules; '
    'if [ "$(cat "$marker" 2>/dev/null)" != "$ODOO_HOSTING_MODULES" ]; then '
    'odoo -c /run/odoo/odoo.conf -i "$ODOO_HOSTING_MODULES" --stop-after-init --no-http; '
    'printf "%s" "$ODOO_HOSTING_MODULES" > "$marker"; fi; '
    "exec odoo -c /run/odoo/odoo.conf"
)


@dataclass(frozen=True, kw_only=True)
class OdooAppArgs:
    """Arguments of :class:`OdooApp`."""

    client_id: str
    docker_host: pulumi.Input[str]
    """``ssh://<adminUser>@<VPN host address>``; an Output that is known once the server exists."""
    ssh_opts: pulumi.Input[Sequence[str]]
    """The provider's ssh options (:func:`components.hostkeys.strict_ssh_options`)."""
    host_ready: Sequence[pulumi.Resource]
    """What must exist before any container (the Host component)."""
    odoo_image: str
    database_name: str
    odoo_conf: str
    caddyfile: str
    published_ip: Sequence[str]
    """Host addresses the proxy's ports are published on: all (public) or the VPN address."""
    modules: Sequence[str]
    outside_connections: Sequence[OutsideConnection] = ()
    sso: Sso = Sso()
    smtp_password: bool = False
    """An SMTP password secret exists (mounted and appended to odoo.conf)."""
    internal_tls: bool = False
    """VPN-only: the proxy serves the origin certificate from the secrets seam."""
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "@sha256:" not in self.odoo_image:
            raise ValueError("the Odoo image must be pinned by digest")
        if not self.published_ip:
            raise ValueError("the proxy needs an address to publish on")


def _labels(base: Mapping[str, str], role: str, **extra: str) -> list[docker.ContainerLabelArgs]:
    values = {**base, ROLE_LABEL: role, **extra}
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(values.items())]


def _bind(source: str, target: str, read_only: bool = False) -> docker.ContainerMountArgs:
    # `mounts` (not `volumes`): a missing source is an error instead of an empty
    # directory on the unencrypted root disk (data only exists once LUKS is open).
    return docker.ContainerMountArgs(type="bind", source=source, target=target, read_only=read_only)


def sso_label(sso: Sso) -> str:
    return json.dumps({
        "oauth": [{"provider": p.name, "clientId": p.client_id, "tenant": p.tenant} for p in sso.oauth],
        "ldap": {"url": sso.ldap.url, "starttls": sso.ldap.starttls, "baseDn": sso.ldap.base_dn}
        if sso.ldap else None,
    }, separators=(",", ":"))


def connections_label(connections: Sequence[OutsideConnection]) -> str:
    return json.dumps([{"name": c.name, "url": c.url, "starttls": c.starttls} for c in connections],
                      separators=(",", ":"))


_LOGS = {"max-size": "20m", "max-file": "5"}


class _Hardening(TypedDict):
    """The inputs every container gets alike. A TypedDict, not a plain dict: unpacked into
    ``docker.Container(...)``, each of them is type-checked against the provider's signature."""

    privileged: bool
    read_only: bool
    security_opts: list[str]
    restart: str
    log_driver: str
    log_opts: dict[str, str]
    destroy_grace_seconds: int


class OdooApp(pulumi.ComponentResource):
    """PostgreSQL + Odoo + Caddy on the client's host, over the VPN."""

    proxy_container: pulumi.Output[str]

    def __init__(self, name: str, args: OdooAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:app:OdooApp", name, None, opts)
        provider = docker.Provider(
            f"{name}-docker",
            host=args.docker_host,
            ssh_opts=args.ssh_opts,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.host_ready)),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        fixed = pulumi.ResourceOptions(parent=self, provider=provider, delete_before_replace=True)
        net_labels = [docker.NetworkLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())]
        backend = docker.Network(f"{name}-backend", name=f"{args.client_id}-backend", internal=True,
                                 labels=net_labels, opts=child)
        frontend = docker.Network(f"{name}-frontend", name=f"{args.client_id}-frontend", labels=net_labels,
                                  opts=child)
        common = _Hardening(
            privileged=False,
            read_only=True,
            security_opts=[NO_NEW_PRIVILEGES],
            restart=RESTART,
            log_driver="json-file",
            log_opts=_LOGS,
            destroy_grace_seconds=60,
        )

        db = docker.Container(
            f"{name}-db",
            name=f"{args.client_id}-db",
            image=POSTGRES_IMAGE,
            labels=_labels(args.labels, "database"),
            envs=[f"POSTGRES_USER={DB_USER}", f"POSTGRES_DB={args.database_name}",
                  "POSTGRES_PASSWORD_FILE=/run/secrets/db-password",
                  "POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256", "PGDATA=/var/lib/postgresql/data/pgdata"],
            mounts=[_bind(f"{DATA_MOUNT_POINT}/postgresql", "/var/lib/postgresql/data"),
                    _bind(host_file(DB_PASSWORD), "/run/secrets/db-password", read_only=True)],
            tmpfs={"/var/run/postgresql": "rw,noexec,nosuid,size=16m", "/tmp": "rw,noexec,nosuid,size=64m"},
            shm_size=256,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(POSTGRES_CAPABILITIES)),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "pg_isready", "-U", DB_USER, "-d", args.database_name],
                interval="10s", timeout="5s", retries=5, start_period="30s"),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=backend.name, aliases=[DB_HOST])],
            stop_signal="SIGINT",
            **common,
            opts=fixed,
        )

        # CD-01: Odoo is replaced create-before-replace. No fixed name (Pulumi names it
        # <resource>-<suffix>) and no published port, so the new container starts next to the old
        # one; `wait` holds the replacement until it is healthy, and only then is the old one
        # deleted. Both answer to the `odoo` alias meanwhile; the proxy retries a failed dial.
        odoo = docker.Container(
            f"{name}-odoo",
            image=args.odoo_image,
            labels=_labels(args.labels, "odoo", **{CONNECTIONS_LABEL: connections_label(args.outside_connections),
                                                    SSO_LABEL: sso_label(args.sso)}),
            user="odoo",
            entrypoints=["/bin/sh", "-c"],
            command=[ODOO_START],
            envs=[f"{ODOO_CONF_ENV}={args.odoo_conf}", f"{ODOO_MODULES_ENV}={','.join(args.modules)}",
                  "ODOO_HOSTING_SECRETS_PROGRAM=" + odoo_secrets_program(
                      secrets_dir=SECRETS_MOUNT, conf_path=ODOO_CONF_PATH, smtp=args.smtp_password)],
            mounts=[_bind(f"{DATA_MOUNT_POINT}/filestore", ODOO_DATA_DIR),
                    _bind(ODOO_LOG_DIR, ODOO_LOG_DIR),
                    *(_bind(host_file(name), f"{SECRETS_MOUNT}/{file_name}", read_only=True) for name, file_name in
                      ((DB_PASSWORD, DB_PASSWORD_NAME), (ODOO_ADMIN_PASSWORD, ADMIN_PASSWORD_NAME),
                       *(((SMTP_PASSWORD, SMTP_PASSWORD_NAME),) if args.smtp_password else ())))],
            tmpfs={"/run/odoo": "rw,noexec,nosuid,size=1m", "/tmp": "rw,noexec,nosuid,size=256m"},
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "python3", "-c",
                       "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8069/web/health', timeout=5)"],
                interval="30s", timeout="10s", retries=3, start_period="120s"),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=backend.name),
                               docker.ContainerNetworksAdvancedArgs(name=frontend.name, aliases=["odoo"])],
            wait=True,
            wait_timeout=ODOO_WAIT_SECONDS,
            **common,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[db]),
        )

        proxy_mounts = [_bind(PROXY_DATA_DIR, "/data")]
        if args.internal_tls:
            proxy_mounts += [_bind(host_file(ORIGIN_CERT), ORIGIN_CERT_PATH, read_only=True),
                             _bind(host_file(ORIGIN_KEY), ORIGIN_KEY_PATH, read_only=True)]
        proxy = docker.Container(
            f"{name}-proxy",
            name=f"{args.client_id}-proxy",
            image=CADDY_IMAGE,
            labels=_labels(args.labels, "proxy"),
            entrypoints=["/bin/sh", "-c"],
            command=[CADDY_START],
            envs=[f"{CADDYFILE_ENV}={args.caddyfile}"],
            ports=[docker.ContainerPortArgs(internal=port, external=port, ip=ip, protocol="tcp")
                   for ip in args.published_ip for port in (80, 443)],
            mounts=proxy_mounts,
            tmpfs={"/config": "rw,noexec,nosuid,size=1m", "/run/caddy": "rw,noexec,nosuid,size=1m",
                   "/tmp": "rw,noexec,nosuid,size=16m"},
            # No capability at all: Docker lets unprivileged processes bind ports >= 0 in the container.
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "nc", "-z", "127.0.0.1", "443"], interval="30s", timeout="5s", retries=3,
                start_period="30s"),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=frontend.name)],
            **common,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, delete_before_replace=True,
                                        depends_on=[odoo]),
        )
        self.proxy_container = proxy.name
        self.register_outputs({"proxy_container": self.proxy_container})
