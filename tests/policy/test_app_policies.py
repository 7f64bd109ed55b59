"""TLS-01 (proxy Caddyfile), ACC-03 (odoo.conf), TLS-03 (outside connections, advisory),
ACC-05 (LDAP over TLS), and the generic ISO-02/SWU-01 policies on the app's own containers.

Baselines are what the program renders for the example stacks; each test changes one thing.
"""

from __future__ import annotations

import json

import pytest

from odoo_hosting_policies import connections, containers, odoo_conf, proxy

from .conftest import run_policy

CONTAINER = "docker:index/container:Container"
DIGEST = "sha256:" + "b2" * 32


def _caddyfile(stack: str = "example-public") -> str:
    from components.app.caddyfile import proxy_site, render_caddyfile
    from tests.conftest import example_settings

    return render_caddyfile(proxy_site(example_settings(stack), origin_certificate=("/c.pem", "/k.pem")))


def _odoo_conf() -> str:
    from components.app.odoo_conf import render_odoo_conf
    from tests.conftest import example_settings

    return render_odoo_conf(example_settings("example-public"))


def good_proxy(caddyfile: str | None = None):
    return {
        "name": "acme-shop-proxy",
        "image": f"caddy:2.8.4-alpine@{DIGEST}",
        "labels": [{"label": "odoo-hosting/role", "value": "proxy"}],
        "envs": [f"CADDYFILE={caddyfile if caddyfile is not None else _caddyfile()}"],
        "securityOpts": ["no-new-privileges:true"],
        "capabilities": {"drops": ["ALL"]},
        "ports": [{"internal": 443, "external": 443, "ip": "0.0.0.0"}],
        "readOnly": True,
    }


def good_odoo(conf: str | None = None, connections_value: str = "[]", sso_value: str | None = None):
    labels = [{"label": "odoo-hosting/role", "value": "odoo"},
              {"label": "odoo-hosting/outside-connections", "value": connections_value}]
    if sso_value is not None:
        labels.append({"label": "odoo-hosting/sso", "value": sso_value})
    return {
        "name": "acme-shop-odoo",
        "image": f"odoo:17.0@{DIGEST}",
        "labels": labels,
        "envs": [f"ODOO_CONF={conf if conf is not None else _odoo_conf()}"],
        "mounts": [{"type": "bind", "source": "/run/odoo-hosting/app/odoo-admin-password",
                    "target": "/run/secrets/odoo-admin-password", "readOnly": True}],
        "securityOpts": ["no-new-privileges:true"],
        "capabilities": {"drops": ["ALL"]},
        "readOnly": True,
    }


TLS01 = proxy.caddy_proxy_https_only
ACC03 = odoo_conf.odoo_conf_hardened
TLS03 = connections.odoo_outside_connections_tls
ACC05 = connections.odoo_sso_ldap_tls


# -- TLS-01 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["example-public", "example-private"])
def test_rendered_caddyfiles_pass(stack):
    assert run_policy(TLS01, CONTAINER, good_proxy(_caddyfile(stack))) == []


def test_plain_http_site_serving_content_is_a_violation():
    text = _caddyfile().replace("\tredir https://{host}{uri} 308", "\treverse_proxy odoo:8069")
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "plain-HTTP site" in message and "redir" in message


def test_the_redirect_site_may_delete_headers_but_answer_nothing_else():
    # The rendered http:// site deletes the Server header; a deletion leaves the redirect its one answer.
    assert "\theader -Server\n\tredir" in _caddyfile()
    for other in ('\theader X-Served-By "caddy"', "\theader +Set-Cookie x=1", '\trespond "hello"',
                  "\theader -Server {\n\t}"):
        text = _caddyfile().replace("\theader -Server\n\tredir", f"{other}\n\tredir")
        [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
        assert "plain-HTTP site" in message, other


def test_temporary_redirect_is_a_violation():
    text = _caddyfile().replace("{uri} 308", "{uri} 302")
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "permanent redirect" in message


def test_missing_hsts_is_a_violation():
    text = "\n".join(line for line in _caddyfile().splitlines() if "Strict-Transport-Security" not in line)
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "Strict-Transport-Security" in message


def test_short_hsts_is_a_violation():
    text = _caddyfile().replace("max-age=63072000", "max-age=86400")
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "max-age=86400" in message


def test_tls_1_0_is_a_violation():
    text = _caddyfile().replace("protocols tls1.2 tls1.3", "protocols tls1.0 tls1.3")
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "tls1.0" in message


def test_auto_https_off_is_a_violation():
    text = _caddyfile().replace("\tadmin off", "\tadmin off\n\tauto_https off")
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "auto_https is off" in message


def test_hand_written_http_only_site_is_a_violation():
    text = ":80 {\n\treverse_proxy odoo:8069\n}\n"
    assert run_policy(TLS01, CONTAINER, good_proxy(text))


def test_site_without_braces_cannot_be_judged():
    [message] = run_policy(TLS01, CONTAINER, good_proxy("erp.example.com\nreverse_proxy odoo:8069\n"))
    assert "braces" in message


def test_import_cannot_be_judged():
    text = _caddyfile() + "import /etc/caddy/more/*\n"
    [message] = run_policy(TLS01, CONTAINER, good_proxy(text))
    assert "import" in message


def test_unbalanced_caddyfile_is_a_violation():
    [message] = run_policy(TLS01, CONTAINER, good_proxy(_caddyfile() + "}\n"))
    assert "cannot be parsed" in message


def test_proxy_without_visible_config_is_a_violation():
    props = good_proxy()
    props.pop("envs")
    [message] = run_policy(TLS01, CONTAINER, props)
    assert "CADDYFILE" in message


def test_non_proxy_container_without_caddyfile_is_not_judged():
    assert run_policy(TLS01, CONTAINER, good_odoo()) == []


# -- ACC-03 -------------------------------------------------------------------------------------

def test_rendered_odoo_conf_passes():
    assert run_policy(ACC03, CONTAINER, good_odoo()) == []


def test_list_db_true_is_a_violation():
    [message] = run_policy(ACC03, CONTAINER, good_odoo(_odoo_conf().replace("list_db = False", "list_db = True")))
    assert "list_db" in message


def test_missing_list_db_is_a_violation():
    # Odoo's default is True.
    [message] = run_policy(ACC03, CONTAINER, good_odoo(_odoo_conf().replace("list_db = False\n", "")))
    assert "list_db" in message


@pytest.mark.parametrize("dbfilter", ["^%d$", ".*", "^acme.*$", "acme_shop", ""])
def test_unpinned_dbfilter_is_a_violation(dbfilter):
    conf = _odoo_conf().replace("dbfilter = ^acme_shop$", f"dbfilter = {dbfilter}")
    [message] = run_policy(ACC03, CONTAINER, good_odoo(conf))
    assert "dbfilter" in message


def test_dbfilter_for_another_database_is_a_violation():
    conf = _odoo_conf().replace("dbfilter = ^acme_shop$", "dbfilter = ^globex$")
    [message] = run_policy(ACC03, CONTAINER, good_odoo(conf))
    assert "does not match db_name" in message


def test_proxy_mode_off_is_a_violation():
    conf = _odoo_conf().replace("proxy_mode = True", "proxy_mode = False")
    [message] = run_policy(ACC03, CONTAINER, good_odoo(conf))
    assert "proxy_mode" in message


def test_plaintext_admin_passwd_is_a_violation_and_not_echoed():
    conf = _odoo_conf() + "admin_passwd = hunter2-very-secret\n"
    [message] = run_policy(ACC03, CONTAINER, good_odoo(conf))
    assert "admin_passwd" in message and "hunter2" not in message


def test_hashed_admin_passwd_in_conf_passes():
    from passlib.hash import pbkdf2_sha512

    conf = _odoo_conf() + f"admin_passwd = {pbkdf2_sha512.using(rounds=1000).hash('x' * 40)}\n"
    props = good_odoo(conf)
    props.pop("mounts")
    assert run_policy(ACC03, CONTAINER, props) == []


def test_no_admin_passwd_and_no_secrets_file_is_a_violation():
    props = good_odoo()
    props.pop("mounts")
    [message] = run_policy(ACC03, CONTAINER, props)
    assert "'admin'" in message


# -- TLS-03 (advisory) --------------------------------------------------------------------------

def _connections(*entries):
    return json.dumps([{"name": n, "url": u, "starttls": s} for n, u, s in entries])


def test_policy_is_advisory():
    from pulumi_policy import EnforcementLevel

    assert TLS03.enforcement_level == EnforcementLevel.ADVISORY


@pytest.mark.parametrize("url,starttls", [
    ("https://hook.example/x", False), ("smtps://mail.example:465", False), ("smtp://mail.example:587", True),
    ("imaps://imap.example", False), ("ldaps://dir.example", False), ("ldap://dir.example", True),
    ("postgresql://db.example/x?sslmode=verify-full", False)])
def test_encrypted_connections_pass(url, starttls):
    assert run_policy(TLS03, CONTAINER, good_odoo(connections_value=_connections(("c", url, starttls)))) == []


@pytest.mark.parametrize("url", ["http://hook.example/x", "smtp://mail.example:25", "imap://imap.example:143",
                                 "ldap://dir.example", "postgresql://db.example/x?sslmode=prefer", "ftp://f.example"])
def test_plaintext_connection_is_reported_by_name_and_endpoint(url):
    value = _connections(("fine", "https://ok.example", False), ("legacy", url, False))
    [message] = run_policy(TLS03, CONTAINER, good_odoo(connections_value=value))
    assert message.startswith(f"outside connection 'legacy' ({url})")


def test_unreadable_connection_list_is_reported():
    assert run_policy(TLS03, CONTAINER, good_odoo(connections_value="not json"))


# -- ACC-05 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ldap", [None, {"url": "ldaps://dir.example", "starttls": False},
                                  {"url": "ldap://dir.example", "starttls": True}])
def test_ldap_over_tls_or_no_ldap_passes(ldap):
    value = json.dumps({"oauth": [], "ldap": ldap})
    assert run_policy(ACC05, CONTAINER, good_odoo(sso_value=value)) == []


def test_plain_ldap_is_a_violation():
    value = json.dumps({"oauth": [], "ldap": {"url": "ldap://dir.example", "starttls": False}})
    [message] = run_policy(ACC05, CONTAINER, good_odoo(sso_value=value))
    assert "ldap://dir.example" in message and "ldaps://" in message


# -- the generic ISO-02 / SWU-01 policies catch broken app containers ----------------------------

def _program_containers():
    """The three containers ClientStack registers for the public example, as the policies see them."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.client_stack import ClientStack, ClientStackArgs
    from tests.conftest import RecordingMocks, RecordingMonitor, example_settings

    settings = example_settings("example-public")
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config({}, [])
    pulumi_mocks.set_mocks(mocks, project="odoo-hosting", stack="t", preview=False, monitor=monitor)
    _sync_await(run_pulumi_func(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings))))
    return {r.name.rsplit("-", 1)[-1]: r.inputs for r in monitor.registrations if r.type == CONTAINER}


@pytest.fixture(scope="module")
def app_containers():
    return _program_containers()


@pytest.mark.parametrize("role", ["db", "odoo", "proxy"])
def test_program_containers_pass_every_container_policy(app_containers, role):
    props = app_containers[role]
    for policy in (containers.docker_container_isolated, containers.docker_image_pinned, TLS01, ACC03, ACC05):
        assert run_policy(policy, CONTAINER, props) == [], policy.name


@pytest.mark.parametrize("change,expected", [
    ({"privileged": True}, "privileged"),
    ({"networkMode": "host"}, "networkMode"),
    ({"securityOpts": []}, "no-new-privileges"),
    ({"mounts": [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}, "socket"),
    ({"ports": [{"internal": 5432, "external": 5432}]}, "database"),
])
def test_broken_database_container_is_flagged_iso_02(app_containers, change, expected):
    props = {**app_containers["db"], **change}
    messages = run_policy(containers.docker_container_isolated, CONTAINER, props)
    assert messages and any(expected in m for m in messages), messages
    assert containers.docker_container_isolated.framework.reference == "ISO-02"


def test_odoo_container_publishing_a_port_is_flagged_iso_02(app_containers):
    props = {**app_containers["odoo"], "ports": [{"internal": 8069, "external": 8069}]}
    assert run_policy(containers.docker_container_isolated, CONTAINER, props)


def test_unpinned_app_image_is_flagged_swu_01(app_containers):
    props = {**app_containers["odoo"], "image": "odoo:17.0"}
    assert run_policy(containers.docker_image_pinned, CONTAINER, props)
    assert containers.docker_image_pinned.framework.reference == "SWU-01"


# -- the generic TLS-04 policies catch weakened internal-CA certificates and keys ---------------------

@pytest.fixture(scope="module")
def vpn_only_tls():
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.client_stack import ClientStack, ClientStackArgs
    from tests.conftest import RecordingMocks, RecordingMonitor, example_settings

    settings = example_settings("example-private")
    monitor = RecordingMonitor(RecordingMocks())
    pulumi.runtime.set_all_config({}, [])
    pulumi_mocks.set_mocks(monitor.mocks, project="odoo-hosting", stack="t", preview=False, monitor=monitor)
    _sync_await(run_pulumi_func(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings))))
    return [r for r in monitor.registrations if r.type.startswith("tls:")]


def _internal_ca(registrations):
    """The internal CA's keys and certificates (not the SSH host key, components/hostkeys.py)."""
    return [r for r in registrations if "-ssh-host-key-" not in r.name]


def test_ssh_host_key_is_ed25519_and_passes_tls_04_and_a_weakened_one_is_flagged(vpn_only_tls):
    from odoo_hosting_policies import tlskeys

    (key,) = [r for r in vpn_only_tls if "-ssh-host-key-" in r.name]
    assert run_policy(tlskeys.tls_private_key_strength, key.type, key.inputs) == []
    assert run_policy(tlskeys.tls_private_key_strength, key.type, {**key.inputs, "algorithm": "RSA"})


def test_internal_ca_keys_and_certificates_pass_tls_04(vpn_only_tls):
    from odoo_hosting_policies import tlskeys

    assert len(_internal_ca(vpn_only_tls)) == 5
    for r in _internal_ca(vpn_only_tls):
        for policy in (tlskeys.tls_private_key_strength, tlskeys.tls_cert_validity):
            assert run_policy(policy, r.type, r.inputs) == [], (policy.name, r.name)


@pytest.mark.parametrize("change", [{"validityPeriodHours": 24 * 365}, {"earlyRenewalHours": None}])
def test_weakened_origin_certificate_is_flagged_tls_04(vpn_only_tls, change):
    from odoo_hosting_policies import tlskeys

    (cert,) = [r for r in vpn_only_tls if r.type == "tls:index/locallySignedCert:LocallySignedCert"]
    props = {k: v for k, v in {**cert.inputs, **change}.items() if v is not None}
    assert run_policy(tlskeys.tls_cert_validity, cert.type, props)
    assert tlskeys.tls_cert_validity.framework.reference == "TLS-04"


def test_weakened_origin_key_is_flagged_tls_04(vpn_only_tls):
    from odoo_hosting_policies import tlskeys

    key = next(r for r in _internal_ca(vpn_only_tls) if r.type == "tls:index/privateKey:PrivateKey")
    assert run_policy(tlskeys.tls_private_key_strength, key.type, {**key.inputs, "ecdsaCurve": "P224"})
