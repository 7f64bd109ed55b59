"""Vault: the client's secrets, its policies and the host's AppRole (SEC-01, SEC-02, SEC-03).

Two components, deployed by two different stacks:

* :class:`VaultOrganisation` (the ``organisation/`` program, one stack for the
  whole company): the KV v2 mount every client path lives in, the AppRole
  auth backend, the audit device (INC-01's register) and the break-glass
  policy allowing ``sys/seal``, granted only to the emergency-operators group.
  These are singletons of the Vault server, so no client stack may own them.
* :class:`ClientSecrets` (every client stack): writes the client's secrets to
  ``odoo-hosting/clients/<client>/boot`` (LUKS key, WireGuard key, app secrets,
  gathered by :class:`components.boot_secrets.BootSecrets`) and
  ``.../backup`` (restic passwords generated here, the bucket access key, the
  incident topic), and creates
  the host's read-only policy on exactly those paths, the host AppRole and the
  bootstrap AppRole that lets a booting host obtain a fresh, response-wrapped,
  single-use secret-id (see README, "Boot secrets and the secret-zero problem").

The Vault provider's token comes from ``VAULT_TOKEN`` in the environment of
``pulumi up``, never from stack config, so it never lands in the state. The
secret values do land in the state as Pulumi secrets (encrypted), like every
input of the KV resources; they are never in user-data, outputs or logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from components.hostconfig.boot_secrets import approle_role_id, boot_kv_path, bootstrap_role_id
from components.hostconfig.paths import VAULT_KV_MOUNT
from components.rotation import SLOTS, Rotation

KV_MOUNT = VAULT_KV_MOUNT
APPROLE_BACKEND = "approle"
BREAK_GLASS_POLICY = "odoo-hosting-break-glass"
EMERGENCY_GROUP = "odoo-hosting-emergency-operators"

HOST_TOKEN_TTL = 15 * 60
"""The host's Vault token lives 15 minutes..."""
HOST_TOKEN_MAX_TTL = 60 * 60
"""...and at most an hour even if renewed; the host logs in again when it needs to."""
HOST_SECRET_ID_TTL = 10 * 60
"""A minted secret-id must be used within 10 minutes (it is used at once)."""
BOOTSTRAP_TOKEN_TTL = 60
"""The bootstrap token is used for exactly one request, right after login."""
WRAPPING_TTL_MAX = 120
"""The bootstrap policy forces response wrapping of the secret-id, for at most this long (seconds)."""

RESTIC_PASSWORD_LENGTH = 48
"""Characters of the restic repository password (BKP-03 wants >= 32)."""

SECRET_NAME_RESTIC = "restic-password"
SECRET_NAME_RESTIC_PREVIOUS = "restic-password-previous"
SECRET_NAME_AWS_KEY_ID = "aws-access-key-id"
SECRET_NAME_AWS_SECRET = "aws-secret-access-key"
SECRET_NAME_INCIDENT_TOPIC = "incident-topic-arn"


def kv_path(client_id: str, kind: str) -> str:
    """Path inside :data:`KV_MOUNT` of one of the client's secrets (``boot``, ``backup``)."""
    if kind == "boot":
        return boot_kv_path(client_id)
    return f"clients/{client_id}/{kind}"


KV_KINDS = ("boot", "backup")


def host_role_name(client_id: str) -> str:
    return approle_role_id(client_id)


def bootstrap_role_name(client_id: str) -> str:
    return bootstrap_role_id(client_id)


def host_policy_name(client_id: str) -> str:
    return f"{client_id}-host"


def bootstrap_policy_name(client_id: str) -> str:
    return f"{client_id}-bootstrap"


def render_host_policy(client_id: str) -> str:
    """Read on the client's own KV v2 paths, each named in full: no glob, no sudo, no sys/ (SEC-02)."""
    blocks = [f'path "{KV_MOUNT}/data/{kv_path(client_id, kind)}" {{\n  capabilities = ["read"]\n}}\n'
              for kind in KV_KINDS]
    return "\n".join(blocks)


def render_bootstrap_policy(client_id: str) -> str:
    """Mint a secret-id for the client's host role, only response-wrapped and short-lived."""
    return (
        f'path "auth/{APPROLE_BACKEND}/role/{host_role_name(client_id)}/secret-id" {{\n'
        '  capabilities = ["update"]\n'
        '  min_wrapping_ttl = "1s"\n'
        f'  max_wrapping_ttl = "{WRAPPING_TTL_MAX}s"\n'
        "}\n"
    )


def render_break_glass_policy() -> str:
    """Seal Vault in an emergency (SEC-03); Vault guards sys/seal with sudo."""
    return 'path "sys/seal" {\n  capabilities = ["update", "sudo"]\n}\n'


def host_cidr(address: str) -> str:
    return f"{address}/32"


# --------------------------------------------------------------------------
# organisation level


@dataclass(frozen=True, kw_only=True)
class VaultOrganisationArgs:
    """Arguments of :class:`VaultOrganisation`."""

    audit_log_path: str = "/var/log/vault/audit.log"
    """Where Vault's file audit device writes (on the Vault server); shipped and retained by ops (INC-01)."""
    emergency_operator_entity_ids: Sequence[str] = ()
    """Vault identity entities of the emergency operators, the only holders of the break-glass policy."""

    def __post_init__(self) -> None:
        if not self.audit_log_path.startswith("/"):
            raise ValueError("audit_log_path must be absolute")


class VaultOrganisation(pulumi.ComponentResource):
    """The company-wide Vault pieces every client stack relies on (one stack: ``organisation/``)."""

    kv_mount: pulumi.Output[str]
    approle_backend: pulumi.Output[str]

    def __init__(self, name: str, args: VaultOrganisationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:secrets:VaultOrganisation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mount = vault.Mount(
            f"{name}-kv",
            path=KV_MOUNT,
            type="kv",
            options={"version": "2"},
            description="odoo-hosting: one path per client under clients/<client>/",
            # Every client's secrets: never deleted by a destroy (REL-01).
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        approle = vault.AuthBackend(f"{name}-approle", type="approle", path=APPROLE_BACKEND,
                                    description="odoo-hosting hosts", opts=child)
        vault.Audit(f"{name}-audit", type="file", path="file",
                    options={"file_path": args.audit_log_path, "format": "json"},
                    description="odoo-hosting incident register (INC-01)",
                    opts=pulumi.ResourceOptions(parent=self, protect=True))
        break_glass = vault.Policy(f"{name}-break-glass", name=BREAK_GLASS_POLICY,
                                   policy=render_break_glass_policy(), opts=child)
        vault.identity.Group(f"{name}-emergency-operators", name=EMERGENCY_GROUP, type="internal",
                             policies=[break_glass.name],
                             member_entity_ids=list(args.emergency_operator_entity_ids), opts=child)
        self.kv_mount = mount.path
        self.approle_backend = approle.path
        self.register_outputs({"kv_mount": self.kv_mount, "approle_backend": self.approle_backend})


# --------------------------------------------------------------------------
# per client


@dataclass(frozen=True, kw_only=True)
class ClientSecretsArgs:
    """Arguments of :class:`ClientSecrets`."""

    client_id: str
    """Names the KV paths, policies and AppRoles (``clients/<client_id>/...``, ``<client_id>-host``)."""
    host_ipv4: pulumi.Input[str]
    """The host's public IPv4 (a pre-allocated primary IP): the AppRoles are bound to it (/32)."""
    boot_values: pulumi.Input[Mapping[str, str]]
    """Secret map name -> value the host reads at boot: the LUKS key, the WireGuard private key
    and the app plane's secrets, gathered by :class:`components.boot_secrets.BootSecrets`."""
    rotation: Rotation
    """Today's place in the rotation schedule of the restic password."""
    backup_credentials: pulumi.Input[Mapping[str, str]]
    """The bucket access key the host uses now (secret map with :data:`SECRET_NAME_AWS_KEY_ID`
    and :data:`SECRET_NAME_AWS_SECRET`), from :class:`components.backup.BackupStorage`."""
    incident_topic_arn: pulumi.Input[str] | None = None
    """The client's incident channel (INC-01), where the backup failure hook publishes."""
    kv_mount: str = KV_MOUNT
    """The KV v2 mount of the organisation stack."""
    approle_backend: str = APPROLE_BACKEND
    """The AppRole auth backend path of the organisation stack."""


class ClientSecrets(pulumi.ComponentResource):
    """The client's secrets in Vault and the host's way to read them (SEC-01, SEC-02)."""

    kv_mount: pulumi.Output[str]
    boot_path: pulumi.Output[str]
    backup_path: pulumi.Output[str]
    host_role_id: pulumi.Output[str]
    bootstrap_role_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClientSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:secrets:ClientSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        client = args.client_id
        cidrs = [pulumi.Output.from_input(args.host_ipv4).apply(host_cidr)]

        restic = {
            slot: random.RandomPassword(
                f"{name}-restic-password-{slot}", length=RESTIC_PASSWORD_LENGTH, special=False,
                keepers={"client": client, "slot": slot, "generation": str(args.rotation.generation(slot))},
                opts=child)
            for slot in SLOTS
        }

        def kv(kind: str, values: pulumi.Input[Mapping[str, str]]) -> vault.kv.SecretV2:
            # Annotated: mypy cannot infer Output.secret's type variable through the Input union.
            data_json: pulumi.Output[str] = pulumi.Output.secret(pulumi.Output.from_input(values).apply(
                lambda v: json.dumps(dict(v), sort_keys=True)))
            return vault.kv.SecretV2(
                f"{name}-{kind}",
                mount=args.kv_mount,
                name=kv_path(client, kind),
                data_json=data_json,
                # A destroy keeps the versions Vault holds (the LUKS key!).
                delete_all_versions=False,
                opts=child,
            )

        kv("boot", args.boot_values)
        kv("backup", pulumi.Output.all(
            restic[args.rotation.current_slot].result,
            restic[args.rotation.previous_slot].result,
            pulumi.Output.from_input(args.backup_credentials),
            args.incident_topic_arn,
        ).apply(lambda v: {SECRET_NAME_RESTIC: v[0], SECRET_NAME_RESTIC_PREVIOUS: v[1],
                           SECRET_NAME_AWS_KEY_ID: v[2][SECRET_NAME_AWS_KEY_ID],
                           SECRET_NAME_AWS_SECRET: v[2][SECRET_NAME_AWS_SECRET],
                           **({SECRET_NAME_INCIDENT_TOPIC: v[3]} if v[3] else {})}))

        host_policy = vault.Policy(f"{name}-host-policy", name=host_policy_name(client),
                                   policy=render_host_policy(client), opts=child)
        host_role = vault.approle.AuthBackendRole(
            f"{name}-host-role",
            backend=args.approle_backend,
            role_name=host_role_name(client),
            # Set explicitly so user-data can name it before the role exists.
            role_id=host_role_name(client),
            bind_secret_id=True,
            secret_id_num_uses=1,
            secret_id_ttl=HOST_SECRET_ID_TTL,
            secret_id_bound_cidrs=cidrs,
            token_bound_cidrs=cidrs,
            token_ttl=HOST_TOKEN_TTL,
            token_max_ttl=HOST_TOKEN_MAX_TTL,
            token_policies=[host_policy.name],
            token_type="service",
            opts=child,
        )
        bootstrap_policy = vault.Policy(f"{name}-bootstrap-policy", name=bootstrap_policy_name(client),
                                        policy=render_bootstrap_policy(client), opts=child)
        bootstrap_role = vault.approle.AuthBackendRole(
            f"{name}-bootstrap-role",
            backend=args.approle_backend,
            role_name=bootstrap_role_name(client),
            role_id=bootstrap_role_name(client),
            # The address is this role's only factor; it can do one thing:
            # mint a wrapped, single-use, address-bound secret-id for the host role.
            bind_secret_id=False,
            secret_id_num_uses=1,
            secret_id_bound_cidrs=cidrs,
            token_bound_cidrs=cidrs,
            token_ttl=BOOTSTRAP_TOKEN_TTL,
            token_max_ttl=BOOTSTRAP_TOKEN_TTL,
            token_num_uses=1,
            token_no_default_policy=True,
            token_policies=[bootstrap_policy.name],
            token_type="service",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[host_role]),
        )

        self.kv_mount = pulumi.Output.from_input(args.kv_mount)
        self.boot_path = pulumi.Output.from_input(kv_path(client, "boot"))
        self.backup_path = pulumi.Output.from_input(kv_path(client, "backup"))
        self.host_role_id = host_role.role_id
        self.bootstrap_role_id = bootstrap_role.role_id
        self.register_outputs({
            "kv_mount": self.kv_mount,
            "boot_path": self.boot_path,
            "backup_path": self.backup_path,
            "host_role_id": self.host_role_id,
            "bootstrap_role_id": self.bootstrap_role_id,
        })
