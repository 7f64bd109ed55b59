"""The backup agent on the host: restic, its systemd timers and the restore script (BKP-01, BKP-03, INC-01).

Everything here is a pure function of the settings, known at preview (the
bucket name is derived from the client id), so the policy pack can judge the
rendered timer and configuration in the user-data.

Secrets never touch the host's disk: the restic password reaches restic
through ``RESTIC_PASSWORD_COMMAND`` (restic runs the Vault fetcher and reads
its stdout), the bucket key through the environment of the restic process
(not its command line), and the database dump is staged on the LUKS volume.
"""

from __future__ import annotations

import hashlib
import shlex
from importlib import resources
from typing import Any

from components.app.odoo_conf import DB_USER
from components.settings import Settings

from .paths import DATA_MOUNT_POINT, DATA_VOLUME_UNIT_NAME, NOTIFY_SCRIPT_PATH, ROOT_OWNER, SECRET_FETCH_PATH

BACKUP_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-backup"
RESTORE_SCRIPT_PATH = "/usr/local/sbin/odoo-hosting-restore"
BACKUP_ENV_PATH = "/etc/odoo-hosting/backup.env"
BACKUP_SERVICE = "odoo-hosting-backup.service"
BACKUP_TIMER = "odoo-hosting-backup.timer"
CHECK_SERVICE = "odoo-hosting-backup-check.service"
CHECK_TIMER = "odoo-hosting-backup-check.timer"
FAILURE_SERVICE = "odoo-hosting-backup-failed@.service"
SYSTEMD_DIR = "/etc/systemd/system"

BACKUP_STAGING = f"{DATA_MOUNT_POINT}/backup-staging"
"""On the LUKS volume: the database dump never lies unencrypted on the root disk."""
BACKUP_FILESTORE = f"{DATA_MOUNT_POINT}/filestore"
RESTIC_CACHE_DIR = f"{BACKUP_STAGING}/.restic-cache"
CHECK_READ_DATA_SUBSET = "5%"
"""The weekly check also downloads and verifies this share of the packs."""
CHECK_WEEKDAY = "Sun"

SECRET_KV_KIND = "backup"
"""The boot.json ``kv_paths`` entry holding the backup secrets."""
BACKUP_TIMEOUT = "6h"


def s3_bucket_arn(bucket_name: str) -> str:
    """A bucket's ARN, which S3 derives from its (global) name alone: known at preview, unlike the
    `arn` output of a bucket not yet created, so the pack can read the policies built from it."""
    return f"arn:aws:s3:::{bucket_name}"


def backup_bucket_name(client_id: str) -> str:
    """A fixed, predictable bucket name, so the host configuration can name the
    repository at preview; the hash suffix keeps it clear of other AWS accounts'
    buckets (names are global). At most 54 characters."""
    suffix = hashlib.sha256(f"odoo-hosting/{client_id}".encode()).hexdigest()[:8]
    return f"odoo-hosting-{client_id}-{suffix}"


def register_bucket_name(client_id: str) -> str:
    """The client's incident register (object-locked, components/register.py); at most 63 characters."""
    return f"{backup_bucket_name(client_id)}-register"


def access_log_bucket_name(client_id: str) -> str:
    """Where S3 writes the backup bucket's server access logs (components/register.py)."""
    return f"{backup_bucket_name(client_id)}-logs"


REGISTER_PREFIX = "records/"
"""Register objects: ``records/YYYY/MM/<time>-<host>-<random>.json``."""


def register_url(region: str, client_id: str) -> str:
    return f"https://s3.{region}.amazonaws.com/{register_bucket_name(client_id)}/{REGISTER_PREFIX.rstrip('/')}"


def repository_url(region: str, bucket: str) -> str:
    """restic's S3 repository address (regional endpoint, ``restic/`` prefix in the bucket)."""
    return f"s3:https://s3.{region}.amazonaws.com/{bucket}/restic"


def dump_command(settings: Settings) -> str:
    """How the agent dumps the client database: pg_dump inside the app plane's PostgreSQL container."""
    return (f"docker exec {settings.client_id}-db pg_dump --format=custom --username={DB_USER} "
            f"{settings.database_name}")


def restore_database_command(settings: Settings) -> str:
    """How the restore script loads a dump (stdin) into the client database."""
    return (f"docker exec -i {settings.client_id}-db pg_restore --clean --if-exists --no-owner "
            f"--username={DB_USER} --dbname={settings.database_name}")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def backup_environment(settings: Settings) -> dict[str, str]:
    """The agent's non-secret configuration (``KEY=value``, sourced by the scripts)."""
    b = settings.backup
    return {
        "RESTIC_REPOSITORY": repository_url(b.region, backup_bucket_name(settings.client_id)),
        "AWS_DEFAULT_REGION": b.region,
        "RESTIC_CACHE_DIR": RESTIC_CACHE_DIR,
        "BACKUP_HOST": settings.client_id,
        "BACKUP_STAGING": BACKUP_STAGING,
        "BACKUP_FILESTORE": BACKUP_FILESTORE,
        "BACKUP_DUMP_COMMAND": dump_command(settings),
        "RESTORE_DATABASE_COMMAND": restore_database_command(settings),
        "BACKUP_KEEP_DAILY": str(b.keep_daily),
        "BACKUP_KEEP_WEEKLY": str(b.keep_weekly),
        "BACKUP_KEEP_MONTHLY": str(b.keep_monthly),
        "BACKUP_CHECK_READ_DATA_SUBSET": CHECK_READ_DATA_SUBSET,
        "SECRET_FETCH": f"{SECRET_FETCH_PATH} --path {SECRET_KV_KIND}",
        "NOTIFY_COMMAND": NOTIFY_SCRIPT_PATH,
    }


def render_backup_env(settings: Settings) -> str:
    lines = [f"# {BACKUP_ENV_PATH}: managed by odoo-hosting (BKP-01). No secrets here: they come from Vault."]
    lines += [f"{key}={shlex.quote(value)}" for key, value in backup_environment(settings).items()]
    return "\n".join(lines) + "\n"


def render_backup_script() -> str:
    return _asset("odoo-hosting-backup.sh").replace("@BACKUP_ENV_PATH@", BACKUP_ENV_PATH)


def render_restore_script() -> str:
    return (_asset("odoo-hosting-restore.sh").replace("@BACKUP_ENV_PATH@", BACKUP_ENV_PATH)
            .replace("@BACKUP_SCRIPT_PATH@", BACKUP_SCRIPT_PATH))


def render_notify_script(settings: Settings) -> str:
    return (_asset("odoo-hosting-notify.py").replace("@SECRET_FETCH_PATH@", SECRET_FETCH_PATH)
            .replace("@REGISTER_URL@", register_url(settings.backup.region, settings.client_id)))


def backup_on_calendar(settings: Settings) -> str:
    return f"*-*-* {settings.backup.time}:00 UTC"


def check_on_calendar(settings: Settings) -> str:
    return f"{CHECK_WEEKDAY} *-*-* {settings.backup.time}:00 UTC"


def _service(description: str, command: str) -> str:
    return f"""\
# managed by odoo-hosting (BKP-01, INC-01)
[Unit]
Description={description}
Documentation=file:{BACKUP_SCRIPT_PATH}
Wants=network-online.target
After=network-online.target {DATA_VOLUME_UNIT_NAME}
Requires={DATA_VOLUME_UNIT_NAME}
OnFailure={FAILURE_SERVICE.replace('@', '@%n')}

[Service]
Type=oneshot
ExecStart={command}
TimeoutStartSec={BACKUP_TIMEOUT}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
PrivateTmp=yes
NoNewPrivileges=yes
ProtectHome=yes
UMask=0077
"""


def _timer(description: str, on_calendar: str, unit: str) -> str:
    return f"""\
# managed by odoo-hosting (BKP-01)
[Unit]
Description={description}

[Timer]
OnCalendar={on_calendar}
Unit={unit}
# A host that was off at the scheduled time catches up at boot.
Persistent=true
AccuracySec=1min

[Install]
WantedBy=timers.target
"""


def render_backup_units(settings: Settings) -> dict[str, str]:
    """unit file name -> content."""
    return {
        BACKUP_SERVICE: _service("Encrypted backup of the Odoo database and filestore (restic)",
                                 f"{BACKUP_SCRIPT_PATH} run"),
        BACKUP_TIMER: _timer("Daily encrypted backup", backup_on_calendar(settings), BACKUP_SERVICE),
        CHECK_SERVICE: _service("Weekly verification of the backup repository (restic check)",
                                f"{BACKUP_SCRIPT_PATH} check"),
        CHECK_TIMER: _timer("Weekly backup repository check", check_on_calendar(settings), CHECK_SERVICE),
        FAILURE_SERVICE: f"""\
# managed by odoo-hosting (INC-01): a failed backup or check reaches the client's incident channel.
[Unit]
Description=Report the failure of %i to the incident channel

[Service]
Type=oneshot
ExecStart={BACKUP_SCRIPT_PATH} notify-failure %i
""",
    }


def backup_write_files(settings: Settings) -> list[dict[str, Any]]:
    """cloud-init ``write_files`` entries of the backup agent (plain text; the
    cloud-config packs the executables)."""
    files = [
        (BACKUP_ENV_PATH, render_backup_env(settings), "0644"),
        (BACKUP_SCRIPT_PATH, render_backup_script(), "0700"),
        (RESTORE_SCRIPT_PATH, render_restore_script(), "0700"),
        (NOTIFY_SCRIPT_PATH, render_notify_script(settings), "0700"),
    ]
    files += [(f"{SYSTEMD_DIR}/{name}", text, "0644") for name, text in render_backup_units(settings).items()]
    return [{"path": path, "owner": ROOT_OWNER, "permissions": mode, "content": content}
            for path, content, mode in files]


BACKUP_PACKAGES = ("restic",)
BACKUP_TIMERS = (BACKUP_TIMER, CHECK_TIMER)
