"""ISO-02 (container isolation) and SWU-01 (images pinned by digest)."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import containers

from .conftest import UNKNOWN, run_policy

ISOLATED = containers.docker_container_isolated
PINNED = containers.docker_image_pinned
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DIGEST = "sha256:" + "a1" * 32


def good_app():
    return {
        "name": "acme-odoo",
        "image": f"odoo:17.0@{DIGEST}",
        "labels": [{"label": "odoo-hosting/role", "value": "app"}, {"label": "client", "value": "acme"}],
        "securityOpts": ["no-new-privileges:true"],
        "capabilities": {"drops": ["ALL"]},
        "volumes": [{"hostPath": "/srv/odoo-data/filestore", "containerPath": "/var/lib/odoo"}],
        "networksAdvanced": [{"name": "acme-net"}],
        "readOnly": True,
    }


def good_proxy():
    props = good_app()
    props.update(name="acme-caddy", image=f"caddy:2.8@{DIGEST}",
                 labels=[{"label": "odoo-hosting/role", "value": "proxy"}],
                 ports=[{"internal": 443, "external": 443}, {"internal": 80, "external": 80}],
                 capabilities={"drops": ["ALL"], "adds": ["NET_BIND_SERVICE"]})
    return props


def good_database():
    props = good_app()
    props.update(name="acme-postgres", image=f"postgres:16@{DIGEST}",
                 labels=[{"label": "odoo-hosting/role", "value": "database"}],
                 mounts=[{"type": "bind", "source": "/srv/odoo-data/postgresql", "target": "/var/lib/postgresql/data"}])
    return props


def changed(base, **changes):
    props = base()
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return props


@pytest.mark.parametrize("make", [good_app, good_proxy, good_database], ids=lambda f: f.__name__)
def test_compliant_containers_pass(make):
    assert run_policy(ISOLATED, CONTAINER, make()) == []
    assert run_policy(PINNED, CONTAINER, make()) == []


@pytest.mark.parametrize("value", [True, "true"])
def test_privileged_container_is_a_violation(value):
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_app, privileged=value))
    assert "privileged" in message


@pytest.mark.parametrize("key,value", [("networkMode", "host"), ("networkMode", "HOST"), ("pidMode", "host"),
                                       ("ipcMode", "host"), ("usernsMode", "host")])
def test_host_namespace_is_a_violation(key, value):
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_app, **{key: value}))
    assert key in message


def test_bridge_network_mode_passes():
    assert run_policy(ISOLATED, CONTAINER, changed(good_app, networkMode="bridge")) == []


@pytest.mark.parametrize("host_path", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var/run/",
                                       "//var//run/../run/docker.sock", "/", "/run/containerd/containerd.sock"])
def test_docker_socket_volume_is_a_violation(host_path):
    props = good_app()
    props["volumes"].append({"hostPath": host_path, "containerPath": "/sock"})
    [message] = run_policy(ISOLATED, CONTAINER, props)
    assert "Docker socket" in message


def test_docker_socket_bind_mount_is_a_violation():
    props = good_app()
    props["mounts"] = [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]
    assert run_policy(ISOLATED, CONTAINER, props)


def test_named_volume_called_run_is_not_a_host_path():
    props = good_app()
    props["mounts"] = [{"type": "volume", "source": "run", "target": "/run"}]
    assert run_policy(ISOLATED, CONTAINER, props) == []


def test_missing_no_new_privileges_is_a_violation():
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_app, securityOpts=["apparmor=docker-default"]))
    assert "no-new-privileges" in message


def test_no_new_privileges_short_form_passes():
    assert run_policy(ISOLATED, CONTAINER, changed(good_app, securityOpts=["no-new-privileges"])) == []


def test_no_new_privileges_false_is_a_violation():
    assert run_policy(ISOLATED, CONTAINER, changed(good_app, securityOpts=["no-new-privileges:false"]))


@pytest.mark.parametrize("cap", ["ALL", "SYS_ADMIN", "net_admin", "CAP_SYS_ADMIN"])
def test_dangerous_capability_is_a_violation(cap):
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_app, capabilities={"adds": [cap]}))
    assert "capabilities" in message


def test_app_publishing_ports_is_a_violation():
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_app, ports=[{"internal": 8069, "external": 8069}]))
    assert "not the TLS proxy" in message


def test_container_without_role_label_publishing_ports_is_a_violation():
    assert run_policy(ISOLATED, CONTAINER, changed(good_proxy, labels=None))


def test_publish_all_ports_is_a_violation():
    assert run_policy(ISOLATED, CONTAINER, changed(good_app, publishAllPorts=True))


def test_database_publishing_ports_is_a_violation():
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_database, ports=[{"internal": 5432}]))
    assert "database" in message


def test_unlabelled_postgres_container_publishing_ports_is_a_database_violation():
    [message] = run_policy(ISOLATED, CONTAINER, changed(good_database, labels=None, ports=[{"internal": 5432}]))
    assert "database" in message


def test_role_label_key_comes_from_policy_config():
    props = changed(good_proxy, labels=[{"label": "role", "value": "proxy"}])
    assert run_policy(ISOLATED, CONTAINER, props, config={"roleLabelKey": "role"}) == []


def test_unknown_network_mode_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(ISOLATED, CONTAINER, changed(good_app, networkMode=UNKNOWN))


# --- SWU-01: digests ------------------------------------------------------------------

@pytest.mark.parametrize("image", ["odoo:17.0", "odoo", "odoo:latest", f"odoo@sha256:{'a1' * 31}",
                                   f"odoo@sha256:{'A1' * 32}", "odoo@sha512:" + "a" * 128])
def test_container_image_not_pinned_by_digest_is_a_violation(image):
    [message] = run_policy(PINNED, CONTAINER, changed(good_app, image=image))
    assert "digest" in message


def test_container_image_given_as_image_id_passes():
    assert run_policy(PINNED, CONTAINER, changed(good_app, image=DIGEST)) == []


def test_remote_image_pinned_passes():
    assert run_policy(PINNED, REMOTE_IMAGE, {"name": f"docker.io/library/caddy:2.8@{DIGEST}"}) == []


def test_remote_image_by_tag_is_a_violation():
    assert run_policy(PINNED, REMOTE_IMAGE, {"name": "caddy:2.8"})


def test_unknown_image_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(PINNED, CONTAINER, changed(good_app, image=UNKNOWN))
