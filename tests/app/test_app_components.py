"""The app plane under Pulumi mocks: containers, networks, provider, certificates, incident channel."""

from __future__ import annotations

import json

import pytest
from passlib.hash import pbkdf2_sha512
from pulumi.runtime.sync_await import _sync_await

from components.app.app import CADDYFILE_ENV, CONNECTIONS_LABEL, ODOO_CONF_ENV, ROLE_LABEL
from components.app.images import CADDY_IMAGE, ODOO_IMAGES, POSTGRES_IMAGE
from components.app.secrets import DB_PASSWORD, ODOO_ADMIN_PASSWORD, ORIGIN_KEY
from components.client_stack import ClientStack, ClientStackArgs
from tests.conftest import EXAMPLE_STACKS, example_settings

CONTAINER = "docker:index/container:Container"


def _build(pulumi_run, stack, **overrides):
    settings = example_settings(stack, **overrides)
    holder = {}
    program = pulumi_run(lambda: holder.setdefault("c", ClientStack(settings.client_id,
                                                                     ClientStackArgs(settings=settings))),
                         stack=stack)
    return settings, holder["c"], program


@pytest.fixture(params=EXAMPLE_STACKS)
def built(request, pulumi_run):
    return _build(pulumi_run, request.param)


def _containers(program):
    return {r.name.rsplit("-", 1)[-1]: r for r in program.of_type(CONTAINER)}


def _labels(r):
    return {item["label"]: item["value"] for item in r.inputs["labels"]}


def _env(r, name):
    return next(e.split("=", 1)[1] for e in r.inputs["envs"] if e.startswith(name + "="))


def test_every_container_is_hardened(built):
    settings, _c, program = built
    containers = _containers(program)
    assert set(containers) == {"db", "odoo", "proxy"}
    for role, c in containers.items():
        i = c.inputs
        assert i["privileged"] is False and i["readOnly"] is True, role
        assert i["securityOpts"] == ["no-new-privileges:true"]
        assert i["capabilities"]["drops"] == ["ALL"]
        assert "networkMode" not in i and "pidMode" not in i and "volumes" not in i
        assert all("docker.sock" not in m["source"] for m in i["mounts"])
        assert i["restart"] == "unless-stopped" and i["healthcheck"]["tests"]
        assert i["logOpts"]["max-size"]
        # CD-01: fixed names/ports force delete-first for the database and the proxy; Odoo (no
        # fixed name, no port) is created first and waited for until healthy.
        assert c.delete_before_replace is (role != "odoo"), role
        assert _labels(c)["client"] == settings.client_id
    assert "name" not in containers["odoo"].inputs and containers["odoo"].inputs["wait"] is True
    assert containers["odoo"].inputs["waitTimeout"] >= 120 + 3 * 30
    assert containers["db"].inputs["capabilities"]["adds"] == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
    assert "adds" not in containers["odoo"].inputs["capabilities"]
    assert {_labels(c)[ROLE_LABEL] for c in containers.values()} == {"database", "odoo", "proxy"}


def test_images_are_the_pinned_ones(built):
    settings, _c, program = built
    containers = _containers(program)
    assert containers["odoo"].inputs["image"] == ODOO_IMAGES[settings.odoo_version]
    assert containers["db"].inputs["image"] == POSTGRES_IMAGE and containers["proxy"].inputs["image"] == CADDY_IMAGE


def test_only_the_proxy_publishes_ports_and_vpn_only_binds_them_to_the_tunnel(built):
    settings, _c, program = built
    containers = _containers(program)
    assert "ports" not in containers["db"].inputs and "ports" not in containers["odoo"].inputs
    published = {(p["ip"], p["external"]) for p in containers["proxy"].inputs["ports"]}
    ips = {"0.0.0.0"} if settings.public else {str(settings.vpn.host_address)}
    assert published == {(ip, port) for ip in ips for port in (80, 443)}


def test_database_is_only_on_the_internal_network_and_data_on_the_luks_volume(built):
    settings, _c, program = built
    networks = {r.name.rsplit("-", 1)[-1]: r for r in program.of_type("docker:index/network:Network")}
    assert networks["backend"].inputs["internal"] is True
    assert "internal" not in networks["frontend"].inputs
    db = _containers(program)["db"].inputs
    assert [n["name"] for n in db["networksAdvanced"]] == [f"{settings.client_id}-backend"]
    assert {"type": "bind", "source": "/srv/odoo-data/postgresql", "target": "/var/lib/postgresql/data"} in [
        {k: m[k] for k in ("type", "source", "target")} for m in db["mounts"]]
    odoo = _containers(program)["odoo"].inputs
    targets = {m["target"]: m for m in odoo["mounts"]}
    assert targets["/var/lib/odoo"]["source"] == "/srv/odoo-data/filestore"
    assert targets["/var/log/odoo"]["source"] == "/var/log/odoo"  # the host's fail2ban jail reads it
    assert targets["/run/secrets/odoo-admin-password"]["readOnly"] is True
    assert targets["/run/secrets/db-password"]["readOnly"] is True


def _plaintext(value):
    """The inputs with every secret-wrapped value removed: what is in plaintext."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return "<secret>"
        return {k: _plaintext(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plaintext(v) for v in value]
    return value


def test_no_secret_value_appears_in_plaintext_in_any_registered_input(built):
    _settings, _c, program = built
    secrets = [r.outputs["result"] for r in program.of_type("random:index/randomPassword:RandomPassword")]
    secrets += [r.outputs["base64"] for r in program.of_type("random:index/randomBytes:RandomBytes")]
    secrets += [r.outputs["privateKeyPem"] for r in program.of_type("tls:index/privateKey:PrivateKey")
                if r.outputs.get("privateKeyPem")]
    assert len(secrets) >= 5
    for r in program.registrations:
        text = repr(_plaintext(r.inputs))
        for value in secrets:
            assert value not in text, f"secret value in the inputs of {r.type} {r.name}"
        assert "$pbkdf2" not in text


def test_the_seam_carries_the_generated_passwords_as_secrets(built):
    settings, client, program = built
    values = _sync_await(client.app_secret_values.future())
    assert _sync_await(client.app_secret_values.is_secret())
    passwords = {r.name.rsplit("-", 2)[-2] + "-" + r.name.rsplit("-", 1)[-1]: r.outputs["result"]
                 for r in program.of_type("random:index/randomPassword:RandomPassword")}
    assert values[DB_PASSWORD] == passwords["db-password"]
    assert values[ODOO_ADMIN_PASSWORD] == passwords["admin-password"]
    assert (ORIGIN_KEY in values) is (not settings.public)


def test_odoo_hashes_the_master_password_into_its_tmpfs_conf(built, tmp_path):
    """The program the Odoo container runs at start, run here with passlib (as in the image)."""
    import subprocess
    import sys

    from components.app.odoo_conf import odoo_secrets_program

    (tmp_path / "odoo-admin-password").write_text("Gener4tedMasterPassword\n")
    (tmp_path / "db-password").write_text("db-pass\n")
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\nlist_db = False\n")
    code = odoo_secrets_program(secrets_dir=str(tmp_path), conf_path=str(conf), smtp=False)
    subprocess.run([sys.executable, "-c", code], check=True)
    text = conf.read_text()
    stored = text.split("admin_passwd = ", 1)[1].splitlines()[0]
    assert stored.startswith("$pbkdf2-sha512$600000$")
    assert pbkdf2_sha512.verify("Gener4tedMasterPassword", stored)
    assert "Gener4tedMasterPassword" not in text and "db_password = db-pass\n" in text
    _s, _c, program = built
    odoo = _containers(program)["odoo"]
    assert _env(odoo, "ODOO_HOSTING_SECRETS_PROGRAM").startswith("from passlib.hash import pbkdf2_sha512")


def test_odoo_receives_the_rendered_conf_and_its_outside_connections(built):
    settings, _c, program = built
    odoo = _containers(program)["odoo"]
    assert "list_db = False" in _env(odoo, ODOO_CONF_ENV)
    listed = json.loads(_labels(odoo)[CONNECTIONS_LABEL])
    assert [c["name"] for c in listed] == [c.name for c in settings.outside_connections]
    proxy = _containers(program)["proxy"]
    assert "Strict-Transport-Security" in _env(proxy, CADDYFILE_ENV)


def test_docker_provider_goes_over_ssh_through_the_vpn_and_waits_for_the_host(built):
    settings, _c, program = built
    provider = program.one("pulumi:providers:docker")
    assert provider.inputs["host"] == f"ssh://{settings.admin_user}@{settings.vpn.host_address}"
    host = program.one("odoo-hosting:host:Host")
    assert host.urn in provider.dependencies or any(
        d for d in provider.dependencies if program.by_urn(d) and program.by_urn(d).parent == host.urn)
    for c in program.of_type(CONTAINER):
        assert c.provider.startswith(provider.urn)


def test_vpn_only_origin_certificate_is_p256_and_short_lived(pulumi_run):
    settings, _c, program = _build(pulumi_run, "example-private")
    keys = [k for k in program.of_type("tls:index/privateKey:PrivateKey") if "-ssh-host-key-" not in k.name]
    assert len(keys) == 2  # the internal CA's and the origin's (the SSH host key: tests/unit/test_hostkeys.py)
    for key in keys:
        assert key.inputs["algorithm"] == "ECDSA" and key.inputs["ecdsaCurve"] == "P256"
    for cert in (program.one("tls:index/selfSignedCert:SelfSignedCert"),
                 program.one("tls:index/locallySignedCert:LocallySignedCert")):
        assert cert.inputs["validityPeriodHours"] <= 90 * 24
        assert 0 < cert.inputs["earlyRenewalHours"] < cert.inputs["validityPeriodHours"]
    csr = program.one("tls:index/certRequest:CertRequest")
    assert csr.inputs["ipAddresses"] == [str(settings.vpn.host_address)]


def test_public_client_has_no_internal_ca(pulumi_run):
    _s, _c, program = _build(pulumi_run, "example-public")
    assert program.of_type("odoo-hosting:app:InternalTls") == []
    # Its only key is the SSH host key (components/hostkeys.py).
    assert [k.name for k in program.of_type("tls:index/privateKey:PrivateKey")] == ["acme-shop-ssh-host-key-key"]


def test_incident_channel_is_an_eu_kms_encrypted_topic_with_the_contacts(built):
    settings, _c, program = built
    (aws_provider,) = [p for p in program.of_type("pulumi:providers:aws") if p.name.endswith("-incidents-aws")]
    assert aws_provider.inputs["region"] == settings.incident_region
    topic = program.one("aws:sns/topic:Topic")
    (key,) = [k for k in program.of_type("aws:kms/key:Key") if k.name.endswith("-incidents-key")]
    assert topic.inputs["kmsMasterKeyId"] == key.id  # the client's own key
    assert key.inputs["enableKeyRotation"] is True and key.protect is True
    subs = program.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subs) == sorted(settings.incident_contacts)
    assert all(s.inputs["protocol"] == "email" for s in subs)
    for r in (topic, key, *subs):
        assert r.provider.startswith(aws_provider.urn)


def test_sso_modules_are_installed(pulumi_run):
    _s, _c, program = _build(pulumi_run, "example-public")
    odoo = _containers(program)["odoo"]
    assert _env(odoo, "ODOO_HOSTING_MODULES") == "base,web,auth_oauth"
