"""The app-secrets seam: the DB password and Odoo's master password.

Generated here with pulumi-random and handed on as Pulumi secrets. They take
the same road as the host's boot secrets (:mod:`components.boot_secrets`):
into the client's Vault entry, from which the host fetches them at boot
(``odoo-hosting-app-secrets``, :mod:`components.hostconfig.docker`) onto
tmpfs (``/run/odoo-hosting/app``), one file per secret, owned by the
container user that reads it. The containers bind-mount single files from
there read-only; the Odoo container writes ``admin_passwd`` into its tmpfs
odoo.conf only as Odoo's pbkdf2-sha512 hash. So no secret is ever in a container's inputs
(environment, command, labels, uploads) and every container keeps a
read-only root filesystem (Docker refuses ``docker cp``/uploads into a
read-only root, which rules uploads out).

**Where Vault takes over:** :attr:`AppSecrets.values` is the whole hand-over
(today it joins the boot secrets' map, ``BootSecrets(app_secrets=...)``).
The secrets-and-backups work may generate the passwords in Vault instead;
the containers and the host script do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from .odoo_conf import ADMIN_PASSWORD_NAME, DB_PASSWORD_NAME, SMTP_PASSWORD_NAME

APP_SECRETS_DIR = "/run/odoo-hosting/app"
"""tmpfs on the host; the containers bind single files from here."""

# Names in Vault (as the host asks for them).
DB_PASSWORD = "app-db-password"
ODOO_ADMIN_PASSWORD = "app-odoo-admin-password"
SMTP_PASSWORD = "app-smtp-password"
ORIGIN_KEY = "app-origin-key"
ORIGIN_CERT = "app-origin-cert"

# Vault name -> file the host writes into APP_SECRETS_DIR (file names as the Odoo container reads them).
HOST_FILES = {
    DB_PASSWORD: DB_PASSWORD_NAME,
    ODOO_ADMIN_PASSWORD: ADMIN_PASSWORD_NAME,
    SMTP_PASSWORD: SMTP_PASSWORD_NAME,
    ORIGIN_KEY: "origin.key",
    ORIGIN_CERT: "origin.crt",
}

PASSWORD_LENGTH = 40


def host_file(name: str) -> str:
    """Host path of the file holding the secret with Vault name ``name``."""
    return f"{APP_SECRETS_DIR}/{HOST_FILES[name]}"


@dataclass(frozen=True, kw_only=True)
class AppSecretsArgs:
    """Arguments of :class:`AppSecrets`."""

    client_id: str
    smtp_password: pulumi.Input[str] | None = None
    """From ``pulumi config set --secret odoo-hosting:smtpPassword``."""
    extra: Mapping[str, pulumi.Input[str]] | None = None
    """More secrets for the seam (the VPN-only origin key and certificate)."""


class AppSecrets(pulumi.ComponentResource):
    """Generates the app's passwords and gathers every app secret for the seam."""

    values: pulumi.Output[dict[str, str]]
    """Secret map: Vault name -> value."""

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:app:AppSecrets", name, None, opts)
        keep = {"client": args.client_id}
        child = pulumi.ResourceOptions(parent=self)
        db_password = random.RandomPassword(f"{name}-db-password", length=PASSWORD_LENGTH, special=False,
                                            keepers=keep, opts=child)
        admin_password = random.RandomPassword(f"{name}-odoo-admin-password", length=PASSWORD_LENGTH,
                                               special=False, keepers=keep, opts=child)
        self.values = pulumi.Output.secret(pulumi.Output.all(
            db_password.result, admin_password.result, args.smtp_password,
            pulumi.Output.from_input(dict(args.extra or {}))).apply(
            lambda v: {DB_PASSWORD: v[0], ODOO_ADMIN_PASSWORD: v[1],
                       **({SMTP_PASSWORD: v[2]} if v[2] else {}), **(v[3] or {})}))
        self.register_outputs({})
