"""Odoo's configuration, rendered from settings (ACC-03, TLS-03, INC-01).

Two parts, because the policy pack must judge the configuration at preview
time while the secrets must never be in a resource input:

* :func:`render_odoo_conf`: everything but secrets (proxy_mode, list_db,
  dbfilter, workers, log file, mail server...). Known at preview; it reaches
  the container as plain text and the ACC-03 policy reads it.
* the secrets: at start the container appends ``admin_passwd`` (a
  pbkdf2-sha512 hash made by Odoo's own passlib, as Odoo stores it; never the
  password) and ``db_password`` from read-only secret files
  (:func:`odoo_secrets_program`).
"""

from __future__ import annotations

from components.settings import OutsideConnection, Settings

from .caddyfile import ODOO_GEVENT_PORT, ODOO_HTTP_PORT

ODOO_DATA_DIR = "/var/lib/odoo"
DB_HOST = "db"
"""The database container's name on the client's private Docker network."""
DB_PORT = 5432
DB_USER = "odoo"
ADMIN_PASSWD_ROUNDS = 600_000
"""Odoo 17/18's own pbkdf2-sha512 rounds for admin_passwd and user passwords."""
ADMIN_PASSWD_PREFIX = "$pbkdf2-sha512$"
# File names of the secrets mounted into the Odoo container (from the host's tmpfs).
DB_PASSWORD_NAME = "db-password"
ADMIN_PASSWORD_NAME = "odoo-admin-password"
SMTP_PASSWORD_NAME = "smtp-password"


def odoo_workers(vcpus: int, ram_gb: int) -> int:
    """Odoo's rule of thumb (2 x CPU + 1), capped by memory: PostgreSQL, the
    proxy and the OS keep about 40 % of RAM, a worker needs about 512 MB."""
    by_memory = int(ram_gb * 1024 * 0.6 // 512)
    return max(2, min(2 * vcpus + 1, by_memory))


def _memory_limits(ram_gb: int) -> tuple[int, int]:
    soft = (1536 if ram_gb <= 4 else 2048) * 1024 * 1024
    return soft, soft * 5 // 4


def outgoing_mail(settings: Settings) -> OutsideConnection | None:
    """The first smtp/smtps outside connection is Odoo's outgoing mail server."""
    return next((c for c in settings.outside_connections if c.kind == "smtp"), None)


def render_odoo_conf(settings: Settings) -> str:
    # Imported here: the host configuration imports this module's constants (backup dumps).
    from components.hostconfig.paths import ODOO_LOG_PATH

    vcpus, ram_gb = settings.server_size
    soft, hard = _memory_limits(ram_gb)
    db = settings.database_name
    lines = [
        "; Managed by odoo-hosting (ACC-03). Rendered from the stack settings; no secrets here:",
        "; admin_passwd (hashed) and db_password are appended at start from the secret files.",
        "[options]",
        "proxy_mode = True",
        "list_db = False",
        f"dbfilter = ^{db}$",
        f"db_name = {db}",
        f"db_host = {DB_HOST}",
        f"db_port = {DB_PORT}",
        f"db_user = {DB_USER}",
        # The database is reached over the client's internal Docker network only.
        "db_sslmode = disable",
        f"data_dir = {ODOO_DATA_DIR}",
        f"logfile = {ODOO_LOG_PATH}",
        "log_level = info",
        "without_demo = all",
        "http_interface = 0.0.0.0",
        f"http_port = {ODOO_HTTP_PORT}",
        f"gevent_port = {ODOO_GEVENT_PORT}",
        f"workers = {odoo_workers(vcpus, ram_gb)}",
        "max_cron_threads = 1",
        f"limit_memory_soft = {soft}",
        f"limit_memory_hard = {hard}",
        "limit_time_cpu = 600",
        "limit_time_real = 1200",
        "limit_request = 8192",
    ]
    smtp = outgoing_mail(settings)
    if smtp is not None:
        default_port = 465 if smtp.url.lower().startswith("smtps") else 587 if smtp.starttls else 25
        lines += [
            f"smtp_server = {smtp.host}",
            f"smtp_port = {smtp.port or default_port}",
            # Odoo's smtp_ssl means "encrypt" (SSL/TLS or STARTTLS, by port).
            f"smtp_ssl = {'True' if smtp.encrypted else 'False'}",
        ]
    for line in lines:
        # configparser reads a line that starts with a blank as the previous value's continuation;
        # a control character or a blank at the edge of a value would change what Odoo reads.
        _key, _sep, value = line.partition(" = ")
        if not line.isprintable() or value != value.strip():
            raise ValueError(f"odoo.conf: not a one-line value: {line[:60]!r}")
    return "\n".join(lines) + "\n"


def odoo_secrets_program(*, secrets_dir: str, conf_path: str, smtp: bool) -> str:
    """Python run by the Odoo container at start (its own interpreter and passlib): appends
    ``admin_passwd`` as Odoo's pbkdf2-sha512 hash of the master password, ``db_password`` and
    (optionally) ``smtp_password`` to the tmpfs odoo.conf. The master password stays in the
    read-only secrets mount; only its hash is in odoo.conf. No secret in argv or environment."""
    smtp_line = (f"f.write('smtp_password = %s\\n' % r('{SMTP_PASSWORD_NAME}'))\n" if smtp else "")
    return (
        "from passlib.hash import pbkdf2_sha512\n"
        f"r = lambda n: open('{secrets_dir}/' + n).read().strip()\n"
        f"with open('{conf_path}', 'a') as f:\n"
        f" f.write('admin_passwd = %s\\n' % pbkdf2_sha512.using(rounds={ADMIN_PASSWD_ROUNDS})"
        f".hash(r('{ADMIN_PASSWORD_NAME}')))\n"
        f" f.write('db_password = %s\\n' % r('{DB_PASSWORD_NAME}'))\n"
        + (" " + smtp_line if smtp else "")
    )
