"""``parse_settings``: plain config values in, a validated :class:`~.model.Settings` out."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from components.app.images import ODOO_VERSIONS

from .fields import (
    _EU_AWS_REGION_RE,
    _NAME_RE,
    _SLUG_RE,
    _UNIX_USER_RE,
    _bool,
    _choice,
    _email,
    _hhmm_minute,
    _hostname,
    _int,
    _ipv4_address,
    _ipv4_network,
    _is_rfc1918,
    _list,
    _maintenance_window,
    _matching,
    _object,
    _private_network,
    _reject_unknown,
    _require_str,
    _unique,
    _url,
    _vault_address,
    parse_ssh_public_key,
    parse_wireguard_key,
)
from .model import (
    Backup,
    Hidden,
    Ldap,
    MaintenanceWindow,
    OAuthProvider,
    OutsideConnection,
    Settings,
    SettingsError,
    SshKey,
    Sso,
    Vpn,
    VpnPeer,
)
from .schema import (
    CONNECTION_SCHEMES,
    EU_LOCATIONS,
    EXPOSURES,
    IMAGES,
    KEYS,
    MAX_CREDENTIAL_ROTATION_DAYS,
    MAX_DATA_VOLUME_GB,
    MIN_DATA_VOLUME_GB,
    SECRET_KEYS,
    SERVER_TYPES,
    STARTTLS_KINDS,
    VPN_DEFAULTS,
    default,
)

_POSTGRES_TLS_MODES = ("require", "verify-ca", "verify-full")
_NAME_ALLOWED = "letters, digits, '.', '_' or '-' (max 63)"


def _backup(value: Callable[[str], Any], window: MaintenanceWindow) -> Backup:
    region = _matching("backupRegion", value("backupRegion"), _EU_AWS_REGION_RE,
                       "an AWS EU region such as eu-central-1, eu-west-1, eu-north-1")
    time_text = value("backupTime")
    minute = _hhmm_minute("backupTime", time_text, "a daily UTC time HH:MM, e.g. 01:30")
    if (minute - window.start_minute) % (24 * 60) < window.duration_minutes:
        raise SettingsError("backupTime", time_text,
                            f"a time outside the maintenance window {window.start}-{window.end} "
                            "(a reboot would cut the backup)")
    fast = _int("backupFastRestoreDays", value("backupFastRestoreDays"), 1, 3650)
    deep = _int("backupDeepArchiveDays", value("backupDeepArchiveDays"), 1, 3650)
    if deep <= fast:
        raise SettingsError("backupDeepArchiveDays", deep,
                            f"more days than backupFastRestoreDays ({fast}): an archive tier cannot start "
                            "before the fast-restore window ends")
    retention = _int("backupRetentionDays", value("backupRetentionDays"), 1, 3650)
    if retention <= deep:
        raise SettingsError("backupRetentionDays", retention,
                            f"more days than backupDeepArchiveDays ({deep}): backups must reach the "
                            "archive tiers before they expire")
    lock = _int("backupLockDays", value("backupLockDays"), 1, 3650)
    if lock > retention:
        raise SettingsError("backupLockDays", lock,
                            f"at most backupRetentionDays ({retention}): a lock longer than the retention "
                            "keeps backups the lifecycle should expire")
    return Backup(
        region=region,
        time=MaintenanceWindow._hhmm(minute),  # re-serialised, never the raw text
        fast_restore_days=fast,
        deep_archive_days=deep,
        retention_days=retention,
        lock_days=lock,
        keep_daily=_int("backupKeepDaily", value("backupKeepDaily"), 1, 366),
        keep_weekly=_int("backupKeepWeekly", value("backupKeepWeekly"), 0, 520),
        keep_monthly=_int("backupKeepMonthly", value("backupKeepMonthly"), 0, 120),
    )


def _ssh_keys(key: str, value: Any) -> tuple[SshKey, ...]:
    entries = _list(key, value)
    if not entries:
        raise SettingsError(key, value, "at least one operator key: [{name: ..., publicKey: ssh-ed25519 ...}]")
    keys: list[SshKey] = []
    for i, entry in enumerate(entries):
        entry_key = f"{key}[{i}]"
        obj = _object(entry_key, entry)
        _reject_unknown(entry_key, obj, ("name", "publicKey"))
        name = _matching(f"{entry_key}.name", obj.get("name"), _NAME_RE, _NAME_ALLOWED)
        key_type, line, bits = parse_ssh_public_key(f"{entry_key}.publicKey", obj.get("publicKey"))
        keys.append(SshKey(name=name, public_key=line, key_type=key_type, bits=bits))
    _unique(key, [k.name for k in keys], "names")
    _unique(key, [k.public_key for k in keys], "keys")
    return tuple(keys)


def _vpn(key: str, value: Any) -> Vpn:
    obj = _object(key, value)
    _reject_unknown(key, obj, ("subnet", "port", "peers"))
    subnet_text = obj.get("subnet", VPN_DEFAULTS["subnet"])
    subnet = _ipv4_network(f"{key}.subnet", subnet_text, "an IPv4 network in CIDR form, e.g. 10.66.0.0/24")
    if not _is_rfc1918(subnet) or not 16 <= subnet.prefixlen <= 29:
        raise SettingsError(f"{key}.subnet", subnet_text, "a private (RFC 1918) IPv4 network from /16 to /29")
    port = _int(f"{key}.port", obj.get("port", VPN_DEFAULTS["port"]), 1024, 65535)
    peers: list[VpnPeer] = []
    for i, entry in enumerate(_list(f"{key}.peers", obj.get("peers"))):
        entry_key = f"{key}.peers[{i}]"
        peer = _object(entry_key, entry)
        _reject_unknown(entry_key, peer, ("name", "publicKey", "address"))
        name = _matching(f"{entry_key}.name", peer.get("name"), _NAME_RE, _NAME_ALLOWED)
        public_key = parse_wireguard_key(f"{entry_key}.publicKey", peer.get("publicKey"))
        address = _ipv4_address(f"{entry_key}.address", peer.get("address"), f"an IPv4 address in {subnet}")
        host = next(subnet.hosts())
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address, host):
            raise SettingsError(f"{entry_key}.address", str(address),
                                f"a host address in {subnet} other than {host} (the server's)")
        peers.append(VpnPeer(name=name, public_key=public_key, address=address))
    if not peers:
        raise SettingsError(f"{key}.peers", obj.get("peers"),
                            "at least one operator peer: SSH is reachable only through the VPN")
    _unique(f"{key}.peers", [p.name for p in peers], "names")
    _unique(f"{key}.peers", [p.public_key for p in peers], "public keys")
    _unique(f"{key}.peers", [str(p.address) for p in peers], "addresses")
    return Vpn(subnet=subnet, port=port, peers=tuple(peers))


def _outside_connection(key: str, entry: Any) -> OutsideConnection:
    obj = _object(key, entry)
    _reject_unknown(key, obj, ("name", "url", "starttls"))
    name = _matching(f"{key}.name", obj.get("name"), _NAME_RE, _NAME_ALLOWED)
    allowed = "a URL with one of the schemes " + ", ".join(CONNECTION_SCHEMES)
    url = _url(f"{key}.url", obj.get("url"), allowed)
    if url.scheme not in CONNECTION_SCHEMES:
        raise SettingsError(f"{key}.url", obj.get("url"), allowed)
    kind, encrypted = CONNECTION_SCHEMES[url.scheme]
    starttls = _bool(f"{key}.starttls", obj.get("starttls", False))
    if starttls and (kind not in STARTTLS_KINDS or encrypted):
        raise SettingsError(f"{key}.starttls", True, f"true only for plain {', '.join(STARTTLS_KINDS)} URLs")
    if kind == "postgresql":
        from urllib.parse import parse_qs
        encrypted = parse_qs(url.query).get("sslmode", [""])[-1] in _POSTGRES_TLS_MODES
    return OutsideConnection(name=name, url=url.text, kind=kind, host=url.host, port=url.port,
                             encrypted=encrypted or starttls, starttls=starttls)


def _sso(key: str, value: Any) -> Sso:
    obj = _object(key, value)
    _reject_unknown(key, obj, ("google", "microsoft", "ldap"))
    oauth: list[OAuthProvider] = []
    for provider in ("google", "microsoft"):
        if obj.get(provider) is None:
            continue
        pkey = f"{key}.{provider}"
        entry = _object(pkey, obj[provider])
        _reject_unknown(pkey, entry, ("clientId", "tenant") if provider == "microsoft" else ("clientId",))
        client_id = _matching(f"{pkey}.clientId", entry.get("clientId"), re.compile(r"[A-Za-z0-9._-]{8,200}"),
                              "the OAuth client id as issued by the provider")
        tenant = None
        if provider == "microsoft":
            tenant = _require_str(f"{pkey}.tenant", entry.get("tenant", "organizations"))
            if not re.fullmatch(r"[A-Za-z0-9.-]{3,100}", tenant) or tenant == "common":
                raise SettingsError(f"{pkey}.tenant", tenant,
                                    "the client's Entra tenant id or domain, or 'organizations' (not 'common')")
        oauth.append(OAuthProvider(name=provider, client_id=client_id, tenant=tenant))
    ldap = None
    if obj.get("ldap") is not None:
        lkey = f"{key}.ldap"
        entry = _object(lkey, obj["ldap"])
        _reject_unknown(lkey, entry, ("url", "starttls", "bindDn", "baseDn", "userFilter"))
        allowed = "an ldaps:// URL, or ldap:// with starttls: true (LDAP only over TLS, ACC-05)"
        url = _url(f"{lkey}.url", entry.get("url"), allowed)
        scheme = url.scheme
        starttls = _bool(f"{lkey}.starttls", entry.get("starttls", False))
        if (scheme not in ("ldap", "ldaps") or (scheme == "ldap" and not starttls) or (scheme == "ldaps" and starttls)
                or url.path not in ("", "/") or url.query):
            raise SettingsError(f"{lkey}.url", entry.get("url"), allowed)
        user_filter = _require_str(f"{lkey}.userFilter", entry.get("userFilter", "(uid=%s)"))
        if "%s" not in user_filter:
            raise SettingsError(f"{lkey}.userFilter", user_filter, "an LDAP filter containing %s for the login")
        ldap = Ldap(url=url.text, host=url.host, port=url.port or (636 if scheme == "ldaps" else 389),
                    starttls=starttls, bind_dn=_require_str(f"{lkey}.bindDn", entry.get("bindDn")),
                    base_dn=_require_str(f"{lkey}.baseDn", entry.get("baseDn")), user_filter=user_filter)
    return Sso(oauth=tuple(oauth), ldap=ldap)


def _secrets_set(raw: Mapping[str, Any], sso: Sso, secure: Collection[str]) -> frozenset[str]:
    present = frozenset(k for k in SECRET_KEYS if raw.get(k) not in (None, ""))
    for k in sorted(present):
        if k not in secure:
            # Plain text in the stack file: it would sit unencrypted in Git and in the state.
            raise SettingsError(k, Hidden("a plain-text value (not shown)"),
                                f"a secret: remove it from the stack file and run `pulumi config set --secret {k}`")
        if not isinstance(raw[k], str):
            raise SettingsError(k, Hidden("(secret)"), "a string set with `pulumi config set --secret`")
    if sso.ldap is not None and "ldapBindPassword" not in present:
        raise SettingsError("ldapBindPassword", None,
                            "the LDAP bind password, set with `pulumi config set --secret` (sso.ldap is configured)")
    return present


def _unknown_key(name: Any) -> SettingsError:
    """An unknown key, named (cut, ASCII) with a suggestion; its value is never shown (a typo of a secret key)."""
    text = name if isinstance(name, str) else repr(name)
    close = difflib.get_close_matches(text, list(KEYS), n=1, cutoff=0.75) or \
        [k for k in KEYS if k.casefold() == text.casefold()]
    hint = f"did you mean {close[0]}? " if close else ""
    return SettingsError(text, Hidden("an unknown key (value not shown)"), hint + "a known key: " + ", ".join(KEYS))


def parse_settings(raw: Mapping[str, Any], *, secure: Collection[str] = ()) -> Settings:
    """Validate plain config values (keys without namespace) into Settings.

    ``secure`` names the keys the stack holds as Pulumi secrets (``pulumi config set
    --secret``); a secret setting given in plain text is an error. Missing keys take the
    defaults of the schema; unknown keys are an error, so a typo never silently falls
    back to a default.
    """
    for name in raw:
        if name not in KEYS:
            raise _unknown_key(name)
    raw = {k: v for k, v in raw.items() if not (k in SECRET_KEYS and v is None)}
    value: Callable[[str], Any] = lambda k: raw.get(k, default(k))  # noqa: E731

    client_id = _matching("clientId", value("clientId"), _SLUG_RE,
                          "a slug of 3-32 characters: lowercase letters, digits and '-', starting with a letter")
    location = _choice("location", value("location"), EU_LOCATIONS)
    server_type = _choice("serverType", value("serverType"), SERVER_TYPES)
    image = _choice("image", value("image"), IMAGES)
    exposure = _choice("exposure", value("exposure"), EXPOSURES)

    domains = tuple(_hostname(f"domains[{i}]", d) for i, d in enumerate(_list("domains", value("domains"), 50)))
    _unique("domains", domains, "domains")
    acme_email = value("acmeEmail")
    if exposure == "public":
        if not domains:
            raise SettingsError("domains", value("domains"), "at least one domain when exposure is public")
        if acme_email is None:
            raise SettingsError("acmeEmail", acme_email,
                                "an e-mail address for the ACME account (required when exposure is public)")
    elif domains:
        raise SettingsError("domains", list(domains),
                            "no domains when exposure is vpn-only (set exposure: public to serve them)")
    if acme_email is not None:
        acme_email = _email("acmeEmail", acme_email)

    admin_user = _matching("adminUser", value("adminUser"), _UNIX_USER_RE,
                           "a Unix user name other than root (lowercase, max 32)")
    if admin_user == "root":
        raise SettingsError("adminUser", admin_user, "a Unix user name other than root (lowercase, max 32)")

    private_network = _private_network("privateNetwork", value("privateNetwork"))
    vpn = _vpn("vpn", value("vpn"))
    if vpn.subnet.overlaps(private_network):
        raise SettingsError("vpn.subnet", str(vpn.subnet),
                            f"a network that does not overlap privateNetwork ({private_network})")
    private_subnet = next(private_network.subnets(new_prefix=max(private_network.prefixlen, 24)))

    odoo_version = value("odooVersion")
    if isinstance(odoo_version, (int, float)) and not isinstance(odoo_version, bool):
        odoo_version = f"{float(odoo_version):.1f}"  # YAML reads 17.0 as a number
    odoo_version = _choice("odooVersion", odoo_version, ODOO_VERSIONS)
    contacts_raw = value("incidentContacts")
    contacts = tuple(_email(f"incidentContacts[{i}]", c)
                     for i, c in enumerate(_list("incidentContacts", contacts_raw, 20)))
    if not contacts:
        raise SettingsError("incidentContacts", contacts_raw,
                            "at least one e-mail address of the client's incident contacts (INC-01)")
    _unique("incidentContacts", contacts, "addresses")
    incident_region = _matching("incidentRegion", value("incidentRegion"), _EU_AWS_REGION_RE,
                                "an EU AWS region (eu-central-1, eu-west-1, ...)")
    sso = _sso("sso", value("sso"))
    connections = [_outside_connection(f"outsideConnections[{i}]", c)
                   for i, c in enumerate(_list("outsideConnections", value("outsideConnections"), 50))]
    _unique("outsideConnections", [c.name for c in connections], "names")
    if sso.ldap is not None:
        connections.append(OutsideConnection(name="sso-ldap", url=sso.ldap.url, kind="ldap", host=sso.ldap.host,
                                             port=sso.ldap.port, encrypted=True, starttls=sso.ldap.starttls))
    secrets_set = _secrets_set(raw, sso, secure)

    return Settings(
        client_id=client_id,
        location=location,
        server_type=server_type,
        image=image,
        exposure=exposure,
        domains=domains,
        acme_email=acme_email,
        ssh_keys=_ssh_keys("sshKeys", value("sshKeys")),
        admin_user=admin_user,
        vpn=vpn,
        private_network=private_network,
        private_subnet=private_subnet,
        data_volume_gb=_int("dataVolumeSize", value("dataVolumeSize"), MIN_DATA_VOLUME_GB, MAX_DATA_VOLUME_GB),
        maintenance_window=_maintenance_window("maintenanceWindow", value("maintenanceWindow")),
        server_protection=_bool("serverProtection", value("serverProtection")),
        vault_address=_vault_address("vaultAddress", value("vaultAddress")),
        odoo_version=odoo_version,
        incident_contacts=contacts,
        incident_region=incident_region,
        sso=sso,
        outside_connections=tuple(connections),
        secrets_set=secrets_set,
        backup=_backup(value, _maintenance_window("maintenanceWindow", value("maintenanceWindow"))),
        credential_rotation_days=_int("credentialRotationDays", value("credentialRotationDays"),
                                      1, MAX_CREDENTIAL_ROTATION_DAYS),
    )
