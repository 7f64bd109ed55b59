"""Settings: one test per validation rule; every error names the key."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from components.settings import SECRET_KEYS, SettingsError, parse_settings
from tests.conftest import example_raw_config


def _raw(stack: str = "example-public", **changes):
    raw = example_raw_config(stack)
    for key, value in changes.items():
        if value is _DELETE:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


_DELETE = object()


def _error(**changes) -> SettingsError:
    stack = changes.pop("stack", "example-public")
    secure = changes.pop("secure", SECRET_KEYS)  # as `pulumi config set --secret` would have set them
    with pytest.raises(SettingsError) as caught:
        parse_settings(_raw(stack, **changes), secure=secure)
    return caught.value


def _openssh(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_examples_parse():
    public = parse_settings(_raw("example-public"))
    private = parse_settings(_raw("example-private"))
    assert public.public and public.domains == ("erp.acme-shop.example",)
    assert not private.public and private.domains == ()
    assert str(private.vpn.host_address) == "10.67.0.1"


def test_error_message_names_key_value_and_allowed():
    err = _error(location="us-east")
    assert err.key == "location"
    assert str(err) == "odoo-hosting:location: got 'us-east'; allowed: fsn1, nbg1, hel1"


def test_error_is_a_run_error_so_pulumi_prints_no_traceback():
    import pulumi
    assert isinstance(_error(location="ash"), pulumi.RunError)


@pytest.mark.parametrize("client_id", ["", "A-shop", "1shop", "shop-", "ab", "x" * 40, "acme_shop", 7])
def test_client_id_must_be_a_slug(client_id):
    assert _error(clientId=client_id).key == "clientId"


def test_client_id_is_required():
    assert _error(clientId=_DELETE).key == "clientId"


@pytest.mark.parametrize("location", ["ash", "hil", "sin", "FSN1", None])
def test_location_must_be_in_the_eu(location):
    assert _error(location=location).key == "location"


def test_location_defaults_to_fsn1():
    assert parse_settings(_raw(location=_DELETE)).location == "fsn1"


@pytest.mark.parametrize("server_type", ["cx22", "cpx11", "huge"])
def test_server_type_must_be_a_current_type(server_type):
    assert _error(serverType=server_type).key == "serverType"


def test_image_must_be_debian_12():
    assert _error(image="ubuntu-24.04").key == "image"


def test_exposure_must_be_public_or_vpn_only():
    assert _error(exposure="internal").key == "exposure"


def test_exposure_defaults_to_vpn_only():
    raw = _raw("example-private", exposure=_DELETE)
    assert parse_settings(raw).exposure == "vpn-only"


def test_public_needs_domains():
    assert _error(domains=[]).key == "domains"


@pytest.mark.parametrize("domain", ["localhost", "1.2.3.4", "-bad.example", "a..example", "under_score.example"])
def test_domains_must_be_fqdns(domain):
    assert _error(domains=[domain]).key == "domains[0]"


def test_domains_must_be_distinct():
    assert _error(domains=["a.example.com", "A.example.com"]).key == "domains"


def test_vpn_only_rejects_domains():
    assert _error(stack="example-private", domains=["erp.example.com"]).key == "domains"


@pytest.mark.parametrize("email", [None, "", "ops", "ops@", "ops@example"])
def test_public_needs_an_acme_email(email):
    assert _error(acmeEmail=email).key == "acmeEmail"


def test_ssh_keys_are_required():
    assert _error(sshKeys=[]).key == "sshKeys"
    assert _error(sshKeys=_DELETE).key == "sshKeys"


def test_ssh_key_entries_reject_unknown_fields():
    keys = [{"name": "a", "publicKey": _raw()["sshKeys"][0]["publicKey"], "pubkey": "x"}]
    assert _error(sshKeys=keys).key == "sshKeys[0].pubkey"


def test_rsa_2048_is_refused_and_rsa_3072_accepted():
    short = _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    err = _error(sshKeys=[{"name": "old", "publicKey": short}])
    assert err.key == "sshKeys[0].publicKey" and "2048 bits" in str(err)
    strong = _openssh(rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key())
    parsed = parse_settings(_raw(sshKeys=[{"name": "new", "publicKey": strong}]))
    assert parsed.ssh_keys[0].bits == 3072


def test_ecdsa_key_is_accepted():
    key = _openssh(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert parse_settings(_raw(sshKeys=[{"name": "e", "publicKey": key}])).ssh_keys[0].key_type == "ecdsa-sha2-nistp256"


def _wire(*parts: bytes) -> str:
    return base64.b64encode(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).decode()


def test_dsa_key_is_refused():
    key = "ssh-dss " + _wire(b"ssh-dss", b"\x01" * 128, b"\x02" * 20, b"\x03" * 128, b"\x04" * 128)
    assert _error(sshKeys=[{"name": "d", "publicKey": key}]).key == "sshKeys[0].publicKey"


@pytest.mark.parametrize("line", ["ssh-ed25519", "ssh-ed25519 not-base64!", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIJBOG4dWQSWkLsAhbV6sQyxxW1wZoE8o2vRUPWqrMotW",
                                  "ssh-ed25519 " + base64.b64encode(b"garbage").decode()])
def test_malformed_ssh_keys_are_refused(line):
    assert _error(sshKeys=[{"name": "x", "publicKey": line}]).key == "sshKeys[0].publicKey"


def test_duplicate_ssh_keys_are_refused():
    entry = _raw()["sshKeys"][0]
    assert _error(sshKeys=[entry, {**entry, "name": "again"}]).key == "sshKeys"


def test_vpn_needs_peers():
    assert _error(vpn={"subnet": "10.66.0.0/24"}).key == "vpn.peers"


def test_vpn_subnet_must_be_private():
    vpn = {**_raw()["vpn"], "subnet": "8.8.8.0/24"}
    assert _error(vpn=vpn).key == "vpn.subnet"


def test_vpn_port_must_be_a_valid_port():
    assert _error(vpn={**_raw()["vpn"], "port": 70000}).key == "vpn.port"
    assert _error(vpn={**_raw()["vpn"], "port": "udp"}).key == "vpn.port"


def test_vpn_peer_key_must_be_a_wireguard_key():
    peer = {**_raw()["vpn"]["peers"][0], "publicKey": "short"}
    assert _error(vpn={**_raw()["vpn"], "peers": [peer]}).key == "vpn.peers[0].publicKey"


@pytest.mark.parametrize("address", ["10.99.0.5", "10.66.0.1", "10.66.0.0", "not-an-ip"])
def test_vpn_peer_address_must_be_a_host_in_the_subnet_other_than_the_server(address):
    peer = {**_raw()["vpn"]["peers"][0], "address": address}
    assert _error(vpn={**_raw()["vpn"], "peers": [peer]}).key == "vpn.peers[0].address"


def test_vpn_peers_must_have_distinct_addresses():
    peer = _raw()["vpn"]["peers"][0]
    other = {**peer, "name": "carol", "publicKey": "O0Pgu0yqeRqwK3mxJpzg3VW0FSWHc2EE4wK3DaG7dic="}
    assert _error(vpn={**_raw()["vpn"], "peers": [peer, other]}).key == "vpn.peers"


def test_vpn_subnet_must_not_overlap_the_private_network():
    assert _error(privateNetwork="10.66.0.0/16").key == "vpn.subnet"


def test_private_network_must_be_private_cidr():
    assert _error(privateNetwork="203.0.113.0/24").key == "privateNetwork"
    assert _error(privateNetwork="100.64.0.0/16").key == "privateNetwork"
    assert _error(privateNetwork="10.10.0.1/16").key == "privateNetwork"


@pytest.mark.parametrize("size", [5, 20000, "big", 12.5, True])
def test_data_volume_size_is_bounded(size):
    assert _error(dataVolumeSize=size).key == "dataVolumeSize"


@pytest.mark.parametrize("window", ["3:00-5:00", "03:00-03:10", "25:00-26:00", "03:00"])
def test_maintenance_window_is_a_daily_window_of_30_minutes_or_more(window):
    assert _error(maintenanceWindow=window).key == "maintenanceWindow"


def test_maintenance_window_across_midnight_reboots_inside_it():
    settings = parse_settings(_raw(maintenanceWindow="23:30-00:10"))
    assert settings.maintenance_window.duration_minutes == 40
    assert settings.maintenance_window.reboot_time == "23:45"


def test_admin_user_cannot_be_root():
    assert _error(adminUser="root").key == "adminUser"


def test_server_protection_must_be_boolean():
    assert _error(serverProtection="maybe").key == "serverProtection"
    assert parse_settings(_raw(serverProtection="false")).server_protection is False


@pytest.mark.parametrize("address", [None, "http://vault.example:8200", "vault.example", "https://vault.example:99999"])
def test_vault_address_must_be_https(address):
    assert _error(vaultAddress=address).key == "vaultAddress"


def test_unknown_key_is_an_error_not_a_silent_default():
    err = _error(clientid="typo")
    assert err.key == "clientid" and "clientId" in str(err)


def test_settings_are_frozen():
    settings = parse_settings(_raw())
    with pytest.raises(Exception):
        settings.location = "hel1"  # type: ignore[misc]


def test_pulumi_yaml_schema_and_settings_agree_on_keys_and_defaults():
    """Pulumi.yaml declares the scalar keys for the CLI; settings.KEYS is what
    the program applies. They must not drift apart."""
    import yaml

    from components.settings import KEYS, REQUIRED
    from tests.conftest import ROOT

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, spec in declared.items():
        assert key in KEYS, f"Pulumi.yaml declares {key}, which the program does not read"
        if "default" in spec:
            assert spec["default"] == KEYS[key].default, key
        else:
            # The CLI refuses a stack that lacks a declared key without a
            # default, so only keys every stack must set may be declared so.
            assert KEYS[key].default is REQUIRED, f"{key} has a program default but no schema default"
            with pytest.raises(SettingsError) as missing:
                parse_settings(_raw("example-private", **{key: _DELETE}))
            assert missing.value.key == key, f"{key} is declared without default but is optional"
    undeclared = set(KEYS) - set(declared)
    # Pulumi's project schema has no object type: object-valued keys are documented in the README.
    # Optional keys without a default (and optional secrets) stay undeclared for the reason above.
    from components.settings import SECRET_KEYS
    assert undeclared == {"sshKeys", "vpn", "sso", "outsideConnections", "domains", "acmeEmail",
                          *SECRET_KEYS}, "only structured, optional-without-default and secret keys may be undeclared"


def test_pulumi_yaml_and_readme_are_generated_from_the_schema():
    """One source of truth: Pulumi.yaml's config block and the README's table are the schema's
    views (`python -m components.settings` regenerates them), and the check sees a drift."""
    from components.settings.schema import ROOT, main, render_pulumi_yaml, render_readme

    pulumi_yaml, readme = (ROOT / "Pulumi.yaml").read_text(), (ROOT / "README.md").read_text()
    assert render_pulumi_yaml(pulumi_yaml) == pulumi_yaml, "run: .venv/bin/python -m components.settings"
    assert render_readme(readme) == readme, "run: .venv/bin/python -m components.settings"
    assert main(["--check"]) == 0
    drifted = pulumi_yaml.replace("default: fsn1", "default: nbg1")
    assert drifted != pulumi_yaml and render_pulumi_yaml(drifted) == pulumi_yaml
    assert render_readme(readme.replace("| `fsn1` |", "| `nbg1` |")) == readme


def test_every_key_has_one_default_and_the_parser_applies_it():
    """The defaults the parser applies are the schema's, not copies (the dataclasses have none)."""
    import dataclasses

    from components.settings import SCHEMA, VPN_DEFAULTS, Settings

    assert not [f.name for f in dataclasses.fields(Settings)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    settings = parse_settings({k: v for k, v in _raw("example-private").items()
                               if k in ("clientId", "sshKeys", "vaultAddress", "incidentContacts", "vpn")})
    defaults = {k.name: k.default for k in SCHEMA}
    assert settings.location == defaults["location"] and settings.server_type == defaults["serverType"]
    assert settings.backup.time == defaults["backupTime"] and settings.odoo_version == defaults["odooVersion"]
    vpn = dict(_raw("example-private")["vpn"])
    vpn.pop("subnet"), vpn.pop("port")
    peers = [dict(p, address=f"10.66.0.{10 + i}") for i, p in enumerate(vpn["peers"])]
    bare = parse_settings({**_raw("example-private"), "vpn": {"peers": peers}})
    assert (str(bare.vpn.subnet), bare.vpn.port) == (VPN_DEFAULTS["subnet"], VPN_DEFAULTS["port"])


# -- the app plane: Odoo version, incident channel, SSO, outside connections, secret keys ------------

def test_app_settings_of_the_examples():
    public = parse_settings(_raw("example-public"))
    private = parse_settings(_raw("example-private"))
    assert public.odoo_version == "17.0" and private.odoo_version == "18.0"
    assert public.database_name == "acme_shop"
    assert public.incident_region == "eu-central-1" and private.incident_region == "eu-west-1"
    assert public.sso.modules == ("auth_oauth",) and private.sso.modules == ()
    assert [c.name for c in private.insecure_connections] == ["legacy-inbox"]
    assert public.insecure_connections == ()


@pytest.mark.parametrize("version", ["16.0", "latest", "19", None])
def test_odoo_version_must_be_a_pinned_series(version):
    assert _error(odooVersion=version).key == "odooVersion"


def test_odoo_version_written_as_a_yaml_number_is_accepted():
    assert parse_settings(_raw(odooVersion=18.0)).odoo_version == "18.0"


def test_odoo_version_defaults_to_17():
    assert parse_settings(_raw(odooVersion=_DELETE)).odoo_version == "17.0"


@pytest.mark.parametrize("contacts", [_DELETE, [], None])
def test_incident_contacts_are_required(contacts):
    assert _error(incidentContacts=contacts).key == "incidentContacts"


def test_incident_contacts_must_be_emails():
    assert _error(incidentContacts=["it@acme.example", "not-an-email"]).key == "incidentContacts[1]"


def test_incident_contacts_must_be_distinct():
    assert _error(incidentContacts=["it@acme.example", "it@acme.example"]).key == "incidentContacts"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central", "ap-south-1", "EU-WEST-1", 3])
def test_incident_region_must_be_in_the_eu(region):
    assert _error(incidentRegion=region).key == "incidentRegion"


def test_incident_region_defaults_to_frankfurt():
    assert parse_settings(_raw(incidentRegion=_DELETE)).incident_region == "eu-central-1"


def test_sso_unknown_provider_is_an_error():
    assert _error(sso={"github": {"clientId": "abcdefgh12"}}).key == "sso.github"


def test_oauth_client_id_is_required():
    assert _error(sso={"google": {}}).key == "sso.google.clientId"


def test_microsoft_tenant_must_not_be_common():
    assert _error(sso={"microsoft": {"clientId": "abcdefgh-1234", "tenant": "common"}}).key == "sso.microsoft.tenant"


def test_microsoft_defaults_to_organizations_tenant():
    s = parse_settings(_raw(sso={"microsoft": {"clientId": "abcdefgh-1234"}}))
    assert s.sso.oauth[0].tenant == "organizations" and s.sso.modules == ("auth_oauth",)


_LDAP = {"url": "ldaps://dir.acme.example", "bindDn": "cn=odoo,dc=acme", "baseDn": "dc=acme"}


def test_ldap_over_ldaps_configures_auth_ldap_and_is_an_encrypted_connection():
    s = parse_settings(_raw(sso={"ldap": _LDAP}, ldapBindPassword="s3cret"), secure=SECRET_KEYS)
    assert s.sso.modules == ("auth_ldap",) and s.sso.ldap.port == 636
    assert [(c.name, c.encrypted) for c in s.outside_connections][-1] == ("sso-ldap", True)
    assert "ldapBindPassword" in s.secrets_set


def test_ldap_with_starttls_is_accepted():
    s = parse_settings(_raw(sso={"ldap": {**_LDAP, "url": "ldap://dir.acme.example", "starttls": True}},
                            ldapBindPassword="s3cret"), secure=SECRET_KEYS)
    assert s.sso.ldap.starttls and s.sso.ldap.port == 389


@pytest.mark.parametrize("url,starttls", [("ldap://dir.acme.example", False), ("ldaps://dir.acme.example", True),
                                          ("https://dir.acme.example", False)])
def test_ldap_without_tls_is_an_error(url, starttls):
    err = _error(sso={"ldap": {**_LDAP, "url": url, "starttls": starttls}}, ldapBindPassword="s3cret")
    assert err.key == "sso.ldap.url" and "ldaps://" in err.allowed


def test_ldap_needs_its_bind_password_as_a_secret():
    assert _error(sso={"ldap": _LDAP}).key == "ldapBindPassword"


def test_ldap_user_filter_needs_the_login_placeholder():
    assert _error(sso={"ldap": {**_LDAP, "userFilter": "(uid=admin)"}}, ldapBindPassword="x").key == "sso.ldap.userFilter"


def test_secret_values_are_never_echoed():
    err = _error(smtpPassword=12345)
    assert err.key == "smtpPassword" and "12345" not in str(err)


def test_url_with_credentials_is_refused_without_echoing_them():
    err = _error(outsideConnections=[{"name": "hook", "url": "https://user:pa55word@hook.example/x"}])
    assert err.key == "outsideConnections[0].url" and "pa55word" not in str(err)


@pytest.mark.parametrize("url", ["ftp://files.example", "mail.example:25", "https://"])
def test_outside_connection_url_needs_a_known_scheme_and_host(url):
    assert _error(outsideConnections=[{"name": "x", "url": url}]).key == "outsideConnections[0].url"


def test_outside_connection_starttls_only_for_plain_smtp_imap_ldap():
    err = _error(outsideConnections=[{"name": "x", "url": "https://a.example", "starttls": True}])
    assert err.key == "outsideConnections[0].starttls"


def test_outside_connection_names_must_be_distinct():
    entry = {"name": "x", "url": "https://a.example"}
    assert _error(outsideConnections=[entry, entry]).key == "outsideConnections"


def test_outside_connection_unknown_field_is_an_error():
    assert _error(outsideConnections=[{"name": "x", "url": "https://a.example", "tls": True}]).key == \
        "outsideConnections[0].tls"


@pytest.mark.parametrize("url,starttls,encrypted", [
    ("smtp://m.example:587", True, True), ("smtp://m.example:25", False, False), ("smtps://m.example", False, True),
    ("http://h.example", False, False), ("https://h.example", False, True),
    ("postgresql://d.example/x?sslmode=require", False, True), ("postgresql://d.example/x", False, False)])
def test_outside_connection_encryption_is_judged_from_scheme_and_starttls(url, starttls, encrypted):
    s = parse_settings(_raw(outsideConnections=[{"name": "x", "url": url, "starttls": starttls}]))
    assert s.outside_connections[0].encrypted is encrypted
