"""ACC-03: Odoo's configuration (odoo.conf) as the Odoo container receives it.

The program passes the non-secret odoo.conf in the container's environment
variable ``ODOO_CONF`` (written to tmpfs at start) and the container appends
the hashed master password from a mounted secret file (``.../odoo-admin-password``
or a ready ``.../odoo-secrets.conf``). Checked:

* ``list_db = False`` (no database manager on the internet);
* ``dbfilter`` pinned to one literal database (``^name$``), matching ``db_name`` if set;
* ``proxy_mode = True`` (Odoo sits behind the TLS proxy);
* ``admin_passwd``, if present, is a pbkdf2 hash, never a password; if absent, a
  secrets file supplies it (otherwise Odoo falls back to the master password "admin").
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import as_list, cannot_check, get, resource_policy
from .connections import odoo_container
from .proxy import env_value

CONTAINER = "docker:index/container:Container"
ODOO_CONF_ENV = "ODOO_CONF"
SECRETS_FILE_SUFFIXES = ("odoo-secrets.conf", "odoo-admin-password")
"""A mounted file with one of these names supplies admin_passwd at start (hashed by the container)."""
_PINNED = re.compile(r"^\^([A-Za-z0-9_][A-Za-z0-9_-]*)\$$")
_HASH = re.compile(r"^\$pbkdf2-sha(256|512)\$\d+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+$")
_FALSE = ("false", "0", "no", "off")
_TRUE = ("true", "1", "yes", "on")


def _options(text: str) -> Mapping[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_section("options"):
        return None
    return dict(parser.items("options"))


def odoo_conf_problems(text: str, secrets_file_mounted: bool) -> list[str]:
    options = _options(text)
    if options is None:
        return ["odoo.conf cannot be read as an INI file with an [options] section"]
    problems = []
    if str(options.get("list_db", "True")).strip().lower() not in _FALSE:
        problems.append("list_db is not False, so the database manager (create, drop, backup databases) "
                        "answers on the web; set list_db = False")
    dbfilter = str(options.get("dbfilter", "")).strip()
    match = _PINNED.match(dbfilter)
    if not match:
        problems.append(f"dbfilter '{dbfilter}' is not pinned to one database; set dbfilter = ^<database>$")
    elif options.get("db_name") and match.group(1) != str(options["db_name"]).strip():
        problems.append(f"dbfilter '{dbfilter}' does not match db_name '{options['db_name']}'; pin the same database")
    if str(options.get("proxy_mode", "False")).strip().lower() not in _TRUE:
        problems.append("proxy_mode is not True, so Odoo behind the TLS proxy sees the proxy's address and "
                        "scheme; set proxy_mode = True")
    admin = options.get("admin_passwd")
    if admin is not None and not _HASH.match(str(admin).strip()):
        # Never echo the value: it may be the password.
        problems.append("admin_passwd is not a pbkdf2 hash ($pbkdf2-sha512$...), so the master password is "
                        "stored readable; store the hash only")
    if admin is None and not secrets_file_mounted:
        problems.append(f"admin_passwd is not set and no secrets file (*{SECRETS_FILE_SUFFIXES[0]} or "
                        f"*{SECRETS_FILE_SUFFIXES[1]}) is mounted, so "
                        "Odoo accepts the default master password 'admin'; supply a hashed admin_passwd")
    return problems


def _mount_targets(props: Mapping[str, Any]) -> list[str]:
    targets = []
    for mount in as_list(get(props, "mounts")):
        if isinstance(mount, Mapping):
            targets.append(str(get(mount, "target", "")))
    for volume in as_list(get(props, "volumes")):
        if isinstance(volume, Mapping):
            targets.append(str(get(volume, "containerPath", "")))
    return targets


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    odoo_container(args, "odoo.conf (ACC-03)")
    conf = env_value(args.props, ODOO_CONF_ENV)
    if conf is None:
        cannot_check(f"odoo.conf (ACC-03): the Odoo container has no {ODOO_CONF_ENV} environment variable, so "
                     "the policy cannot see its configuration; the app component passes it")
    mounted = any(t.endswith(SECRETS_FILE_SUFFIXES) for t in _mount_targets(args.props))
    for problem in odoo_conf_problems(conf, mounted):
        report_violation(f"odoo.conf: {problem}.", None)


odoo_conf_hardened = resource_policy(
    name="docker-odoo-conf-hardened",
    description="Checks that Odoo's odoo.conf disables the database list, pins dbfilter to the client's "
                "database, enables proxy_mode and never holds the master password in plaintext.",
    controls=["ACC-03"],
    severity=Severity.HIGH,
    remediation="Render odoo.conf with list_db = False, dbfilter = ^<db>$, proxy_mode = True, and admin_passwd "
                "only as a $pbkdf2-sha512$ hash delivered through the secrets file.",
    validate=_validate,
    applies_to=(CONTAINER,),
    scope="client",
)
