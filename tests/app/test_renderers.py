"""The app plane's renderers: Caddyfile and odoo.conf, pure functions of settings."""

from __future__ import annotations

import configparser

import pytest

from components.app.caddyfile import HSTS_MAX_AGE, ProxySite, internal_name, proxy_site, render_caddyfile
from components.app.images import CADDY_IMAGE, DIGEST_RE, ODOO_IMAGES, POSTGRES_IMAGE
from components.app.odoo_conf import ADMIN_PASSWD_ROUNDS, odoo_secrets_program, odoo_workers, render_odoo_conf
from components.hostconfig.paths import ODOO_LOG_PATH
from tests.conftest import example_settings

CERT = ("/run/secrets/origin.crt", "/run/secrets/origin.key")


def _options(text: str) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return dict(parser.items("options"))


def test_every_image_is_pinned_by_digest():
    for image in (*ODOO_IMAGES.values(), POSTGRES_IMAGE, CADDY_IMAGE):
        assert DIGEST_RE.match(image), image


def test_public_caddyfile_serves_the_domains_with_acme_hsts_and_a_permanent_redirect():
    text = render_caddyfile(proxy_site(example_settings("example-public"), origin_certificate=CERT))
    assert "email ops@hosting.example" in text
    assert "https://erp.acme-shop.example {" in text and "http://erp.acme-shop.example {" in text
    assert f"max-age={HSTS_MAX_AGE}" in text and HSTS_MAX_AGE >= 31536000
    assert "redir https://{host}{uri} 308" in text
    assert "protocols tls1.2 tls1.3" in text
    assert "reverse_proxy @odoo_websocket odoo:8072" in text and "reverse_proxy odoo:8069" in text
    assert "tls /run" not in text  # ACME, not a file certificate


def test_vpn_only_caddyfile_serves_the_origin_certificate_on_the_vpn_address():
    settings = example_settings("example-private")
    text = render_caddyfile(proxy_site(settings, origin_certificate=CERT))
    assert f"https://{settings.vpn.host_address}, https://{internal_name(settings.client_id)} {{" in text
    assert f"tls {CERT[0]} {CERT[1]} {{" in text
    assert "email" not in text and "acme_ca" not in text


def test_test_overrides_only_change_ports_bind_storage_and_acme_directory():
    site = ProxySite(addresses=["erp.test.example"], upstream="127.0.0.1", acme_email="t@test.example",
                     acme_ca="https://127.0.0.1:14000/dir", acme_ca_root="/tmp/ca.pem", http_port=8080,
                     https_port=8443, bind="127.0.0.1", storage_dir="/tmp/caddy", upstream_http_port=9000,
                     upstream_gevent_port=9001)
    text = render_caddyfile(site)
    assert "https://erp.test.example:8443 {" in text and "http://erp.test.example:8080 {" in text
    assert "redir https://{host}:8443{uri} 308" in text
    assert "bind 127.0.0.1" in text and "acme_ca https://127.0.0.1:14000/dir" in text


def test_acme_needs_an_email():
    with pytest.raises(ValueError, match="e-mail"):
        ProxySite(addresses=["a.example"], upstream="odoo")


def test_odoo_conf_is_hardened_and_pinned_to_the_client_database():
    settings = example_settings("example-public")
    options = _options(render_odoo_conf(settings))
    assert options["proxy_mode"] == "True" and options["list_db"] == "False"
    assert options["dbfilter"] == "^acme_shop$" and options["db_name"] == "acme_shop"
    assert options["db_host"] == "db" and options["logfile"] == ODOO_LOG_PATH
    assert "admin_passwd" not in options and "db_password" not in options
    assert options["smtp_server"] == "smtp.acme-shop.example" and options["smtp_port"] == "587"
    assert options["smtp_ssl"] == "True"
    assert int(options["workers"]) == odoo_workers(4, 8)


@pytest.mark.parametrize("vcpus,ram,expected", [(2, 4, 4), (4, 8, 9), (8, 16, 17), (2, 8, 5), (48, 192, 97)])
def test_workers_follow_cpus_capped_by_memory(vcpus, ram, expected):
    assert odoo_workers(vcpus, ram) == expected


def test_secrets_program_never_holds_a_secret_and_uses_odoo_rounds():
    code = odoo_secrets_program(secrets_dir="/run/secrets", conf_path="/run/odoo/odoo.conf", smtp=True)
    compile(code, "program", "exec")
    assert f"rounds={ADMIN_PASSWD_ROUNDS}" in code and ADMIN_PASSWD_ROUNDS >= 600_000
    assert "smtp_password" in code
    assert "smtp_password" not in odoo_secrets_program(secrets_dir="/s", conf_path="/c", smtp=False)
