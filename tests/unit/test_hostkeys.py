"""The Pulumi-made SSH host key: Ed25519, delivered through Vault, trusted strictly by the Docker provider."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from pulumi.runtime.sync_await import _sync_await

from components.client_stack import ClientStack, ClientStackArgs
from components.hostconfig import SECRET_NAME_SSH_HOST_KEY, bundle_files, render_host
from components.hostconfig.hostkey import render_hostkey_script
from components.hostkeys import KNOWN_HOSTS_DIR_ENV, known_hosts_line, known_hosts_path, strict_ssh_options
from tests.conftest import EXAMPLE_STACKS, example_settings

KEY = "tls:index/privateKey:PrivateKey"


def _value(output):
    return _sync_await(output.future())


@pytest.fixture(params=EXAMPLE_STACKS)
def built(request, pulumi_run):
    settings = example_settings(request.param)
    holder = {}

    def program():
        holder["client"] = ClientStack(settings.client_id, ClientStackArgs(settings=settings))

    program_run = pulumi_run(program, stack=request.param)
    return settings, holder["client"], program_run


def _host_key(program):
    (key,) = [r for r in program.of_type(KEY) if r.name.endswith("-ssh-host-key-key")]
    return key


def test_host_key_is_ed25519_and_independent_of_the_server(built):
    _settings, _client, program = built
    key = _host_key(program)
    assert key.inputs["algorithm"] == "ED25519"
    server = program.one("hcloud:index/server:Server")
    # Nothing of the server (or anything replaced with it) feeds the key: a new server, the same key.
    assert server.urn not in key.dependencies
    assert set(key.inputs) == {"algorithm"}
    assert "privateKeyOpenssh" in key.additional_secret_outputs


def test_public_half_is_a_known_hosts_line_for_the_vpn_address(built):
    settings, client, program = built
    public = _host_key(program).outputs["publicKeyOpenssh"].strip()
    assert _value(client.ssh_host_public_key) == public
    assert _value(client.ssh_known_hosts) == f"{settings.vpn.host_address} {public}"
    assert _sync_await(client.ssh_known_hosts.is_secret()) is False


def test_private_half_goes_to_vault_as_a_secret_and_nowhere_else(built):
    settings, _client, program = built
    private = _host_key(program).outputs["privateKeyOpenssh"].strip()
    serialization.load_ssh_private_key(private.encode(), None)  # a real OpenSSH key
    kvs = {r.inputs["name"]: r for r in program.of_type("vault:kv/secretV2:SecretV2")}
    boot = kvs[f"clients/{settings.client_id}/boot"].inputs["dataJson"]
    assert json.loads(boot["value"])[SECRET_NAME_SSH_HOST_KEY] == private
    body = private.splitlines()[1]
    host = render_host(settings)
    assert body not in host.user_data and body not in host.bundle
    for r in program.registrations:
        if r.type in ("vault:kv/secretV2:SecretV2", KEY) or r.name.endswith("-boot-secrets"):
            continue
        assert body not in repr(r.inputs), f"host key in the inputs of {r.name}"


def test_docker_provider_checks_the_host_key_strictly_against_the_written_file(built):
    settings, client, program = built
    provider = program.one("pulumi:providers:docker")
    opts = json.loads(provider.inputs["sshOpts"]) if isinstance(provider.inputs["sshOpts"], str) \
        else provider.inputs["sshOpts"]
    path = known_hosts_path(settings.client_id)
    assert opts == strict_ssh_options(path)
    assert "StrictHostKeyChecking=yes" in opts and f"UserKnownHostsFile={path}" in opts
    assert path.startswith(os.environ[KNOWN_HOSTS_DIR_ENV])
    # `pulumi up` (mocks: not a preview) wrote the line before the provider could connect.
    assert Path(path).read_text() == _value(client.ssh_known_hosts) + "\n"


def test_known_hosts_line_forms():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"
    assert known_hosts_line("10.66.0.1", key + " comment\n") == f"10.66.0.1 {key}"
    assert known_hosts_line("10.66.0.1", key, port=2222) == f"[10.66.0.1]:2222 {key}"
    assert known_hosts_line("10.66.0.1", None) is None
    with pytest.raises(ValueError, match="not an ssh-ed25519"):
        known_hosts_line("10.66.0.1", "ecdsa-sha2-nistp256 AAAAE2VjZHNh")


def test_bundle_installs_the_host_key_unit_at_every_boot():
    settings = example_settings("example-private")
    host = render_host(settings)
    files = {f["path"]: f for f in bundle_files(settings)}
    assert files["/usr/local/sbin/odoo-hosting-hostkey"]["content"] == render_hostkey_script()
    assert files["/usr/local/sbin/odoo-hosting-hostkey"]["permissions"] == "0700"
    assert "WantedBy=multi-user.target" in files["/etc/systemd/system/odoo-hosting-hostkey.service"]["content"]
    assert "[systemctl, enable, --now, --no-block, odoo-hosting-hostkey.service]" in host.bundle
    assert "odoo-hosting-hostkey" not in host.user_data  # no user-data byte spent


def test_write_known_hosts_is_atomic_0644_and_safe_for_concurrent_writers(tmp_path):
    """Two runs writing one client's file at once: each rename is whole, none fails, no temporary
    file is left (with one shared temporary name, one writer's rename took the other's file away)."""
    import threading

    from components.hostkeys import write_known_hosts

    assert not pulumi.runtime.is_dry_run()  # outside a preview: it writes
    path = tmp_path / "dir" / "acme-shop.known_hosts"
    lines = [f"10.66.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{n:043d}" for n in range(4)]
    errors: list[BaseException] = []

    def writer(line: str) -> None:
        try:
            for _ in range(200):
                write_known_hosts(str(path), line)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(line,)) for line in lines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_text() in {line + "\n" for line in lines}
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
