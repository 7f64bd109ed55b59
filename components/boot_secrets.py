"""The boot-secrets seam: secrets the host needs at boot, on their way to Vault.

The host fetches its LUKS key, WireGuard private key and SSH host key at boot with
``/usr/local/sbin/odoo-hosting-secret NAME`` (rendered by
``components.hostconfig``): an AppRole login with a response-wrapped,
single-use secret-id, then a KV v2 read of :data:`BOOT_SECRETS_KV_PATH`.
Neither secret is ever in user-data.

This component is the one place where those secrets are gathered, with the
Vault path they belong at; :class:`components.secrets.ClientSecrets` writes
:attr:`BootSecrets.values` to that path and creates the policy and AppRoles
the host reads it with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_random as random

KV_MOUNT = "odoo-hosting"
"""The KV v2 mount holding every client's secrets."""

SECRET_NAMES = ("luks-key", "wireguard-private-key", "ssh-host-ed25519-key")
"""The keys of the boot secret, as the host asks for them."""

LUKS_KEY_LENGTH = 64
"""Characters of the LUKS passphrase (alphanumeric: about 380 bits)."""


def boot_secrets_kv_path(client_id: str) -> str:
    """Path (inside :data:`KV_MOUNT`) of the client's boot secret."""
    return f"clients/{client_id}/boot"


@dataclass(frozen=True, kw_only=True)
class BootSecretsArgs:
    """Arguments of :class:`BootSecrets`."""

    client_id: str
    """The client whose host reads these secrets."""
    wireguard_private_key: pulumi.Input[str]
    """The host's WireGuard private key (secret), from :class:`components.vpn.WireGuardHostKey`."""
    ssh_host_key: pulumi.Input[str]
    """The host's OpenSSH Ed25519 private key (secret), from :class:`components.hostkeys.SshHostKey`."""
    app_secrets: pulumi.Input[Mapping[str, str]] | None = None
    """The app plane's secret files (:class:`components.app.secrets.AppSecrets`), fetched by the
    host by name like the boot secrets."""


class BootSecrets(pulumi.ComponentResource):
    """Generates the LUKS key and gathers the boot secrets for Vault delivery."""

    kv_mount: pulumi.Output[str]
    kv_path: pulumi.Output[str]
    values: pulumi.Output[dict[str, str]]
    """Secret map name -> value, exactly what the host reads from Vault."""

    def __init__(self, name: str, args: BootSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:secrets:BootSecrets", name, None, opts)
        luks_key = random.RandomPassword(
            f"{name}-luks-key",
            length=LUKS_KEY_LENGTH,
            special=False,
            keepers={"client": args.client_id},
            # A new LUKS key would lock the existing volume: never replace it
            # by accident (rotation is a luksAddKey/luksRemoveKey procedure).
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.kv_mount = pulumi.Output.from_input(KV_MOUNT)
        self.kv_path = pulumi.Output.from_input(boot_secrets_kv_path(args.client_id))
        self.values = pulumi.Output.secret(pulumi.Output.all(
            luks_key.result, args.wireguard_private_key, args.ssh_host_key, args.app_secrets).apply(
            lambda v: {**dict(zip(SECRET_NAMES, v[:3], strict=True)), **(v[3] or {})}))
        self.register_outputs({"kv_mount": self.kv_mount, "kv_path": self.kv_path})
