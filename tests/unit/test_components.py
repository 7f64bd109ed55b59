"""ClientStack and its parts under Pulumi mocks: what gets registered, how."""

from __future__ import annotations

import base64
import hashlib
import runpy

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pulumi.runtime.sync_await import _sync_await

from components.client_stack import ClientStack, ClientStackArgs
from components.firewall import firewall_rules
from components.host import HostArgs
from components.hostconfig import HETZNER_USER_DATA_LIMIT, render_cloud_config, render_host
from components.settings import SettingsError
from components.vpn import _public_key_of
from tests.conftest import EXAMPLE_STACKS, ROOT, example_raw_config, example_settings

SERVER = "hcloud:index/server:Server"
VOLUME = "hcloud:index/volume:Volume"
FIREWALL = "hcloud:index/firewall:Firewall"
LABELLED = {SERVER, VOLUME, FIREWALL, "hcloud:index/network:Network", "hcloud:index/sshKey:SshKey"}


def _build(pulumi_run, stack: str, **overrides):
    settings = example_settings(stack, **overrides)
    holder = {}

    def program():
        holder["client"] = ClientStack(settings.client_id, ClientStackArgs(settings=settings))

    program_run = pulumi_run(program, stack=stack)
    return settings, holder["client"], program_run


def _named(program, suffix: str):
    (found,) = [r for r in program.registrations if r.name.endswith("-" + suffix)]
    return found


def _value(output):
    return _sync_await(output.future())


@pytest.fixture(params=EXAMPLE_STACKS)
def built(request, pulumi_run):
    return _build(pulumi_run, request.param)


def test_resource_types_and_counts(built):
    settings, _client, program = built
    counts: dict[str, int] = {}
    for r in program.registrations:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "odoo-hosting:client:ClientStack": 1,
        "odoo-hosting:network:ClientFirewall": 1,
        "odoo-hosting:vpn:WireGuardHostKey": 1,
        "odoo-hosting:secrets:BootSecrets": 1,
        "odoo-hosting:host:Host": 1,
        FIREWALL: 1,
        # WireGuard key; LUKS key + DB and Odoo admin passwords.
        "random:index/randomBytes:RandomBytes": 1,
        "random:index/randomPassword:RandomPassword": 3 + 2,  # + the two restic password slots
        # The app plane.
        "odoo-hosting:app:AppSecrets": 1,
        "odoo-hosting:app:OdooApp": 1,
        "odoo-hosting:app:IncidentChannel": 1,
        "pulumi:providers:docker": 1,
        "docker:index/network:Network": 2,
        "docker:index/container:Container": 3,
        "pulumi:providers:aws": 2,  # incident channel + backups, each pinned to its EU region
        "aws:kms/key:Key": 2,
        # Backups and the client's Vault side (issue 3).
        "odoo-hosting:host:HostAddress": 1,
        "hcloud:index/primaryIp:PrimaryIp": 1,
        "odoo-hosting:backup:BackupStorage": 1,
        "aws:kms/alias:Alias": 1,
        # Backup bucket + the incident register and the access-log bucket (issue 18).
        "odoo-hosting:backup:IncidentRegister": 1,
        "aws:s3/bucket:Bucket": 3,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 3,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 3,
        "aws:s3/bucketVersioning:BucketVersioning": 3,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 3,
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": 2,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 3,
        "aws:s3/bucketPolicy:BucketPolicy": 3,
        "aws:s3/bucketLogging:BucketLogging": 1,
        "aws:s3/bucketObjectv2:BucketObjectv2": 1,  # the host bundle
        "aws:iam/user:User": 1,
        "aws:iam/userPolicy:UserPolicy": 3,  # backup + register + incident publisher
        "aws:iam/accessKey:AccessKey": 2,
        "odoo-hosting:secrets:ClientSecrets": 1,
        "vault:kv/secretV2:SecretV2": 2,
        "vault:index/policy:Policy": 2,
        "vault:appRole/authBackendRole:AuthBackendRole": 2,
        "aws:sns/topic:Topic": 1,
        "aws:sns/topicSubscription:TopicSubscription": len(settings.incident_contacts),
        "odoo-hosting:host:SshHostKey": 1,
        **({"tls:index/privateKey:PrivateKey": 1} if settings.public else {
            "odoo-hosting:app:InternalTls": 1,
            "tls:index/privateKey:PrivateKey": 2 + 1,
            "tls:index/selfSignedCert:SelfSignedCert": 1,
            "tls:index/certRequest:CertRequest": 1,
            "tls:index/locallySignedCert:LocallySignedCert": 1,
        }),
        "hcloud:index/sshKey:SshKey": len(settings.ssh_keys),
        "hcloud:index/network:Network": 1,
        "hcloud:index/networkSubnet:NetworkSubnet": 1,
        SERVER: 1,
        "hcloud:index/serverNetwork:ServerNetwork": 1,
        VOLUME: 1,
        "hcloud:index/volumeAttachment:VolumeAttachment": 1,
    }


def test_every_resource_descends_from_the_client_stack_and_is_named_after_it(built):
    settings, _client, program = built
    root = program.one("odoo-hosting:client:ClientStack")
    for r in program.registrations:
        assert r.name.startswith(settings.client_id)
        if r is root:
            continue
        chain, parent = [], program.by_urn(r.parent)
        while parent is not None and parent is not root:
            chain.append(parent)
            parent = program.by_urn(parent.parent)
        assert parent is root, f"{r.type} {r.name} is not inside the ClientStack"


def test_labelled_resources_carry_the_client_id(built):
    settings, _client, program = built
    labelled = [r for r in program.registrations if r.type in LABELLED]
    assert labelled
    for r in labelled:
        assert r.inputs["labels"]["client"] == settings.client_id, r.name
        assert r.inputs["labels"]["exposure"] == settings.exposure


def test_server_is_protected_attached_to_firewall_and_replaced_safely(built):
    settings, _client, program = built
    server = program.one(SERVER)
    assert server.inputs["location"] == settings.location
    assert server.inputs["sshKeys"] and len(server.inputs["sshKeys"]) == len(settings.ssh_keys)
    assert server.inputs["firewallIds"] == [int(program.one(FIREWALL).id)]
    assert server.inputs["deleteProtection"] is True and server.inputs["rebuildProtection"] is True
    assert server.inputs["backups"] is False and server.inputs["shutdownBeforeDeletion"] is True
    assert server.delete_before_replace is True
    assert sorted(server.ignore_changes) == ["image", "sshKeys"]
    assert "networks" not in server.inputs  # attached through a separate ServerNetwork


def test_server_protection_can_be_turned_off_explicitly(pulumi_run):
    _settings, _client, program = _build(pulumi_run, "example-public", serverProtection=False)
    server = program.one(SERVER)
    assert server.inputs["deleteProtection"] is False and server.inputs["rebuildProtection"] is False


def test_server_joins_its_own_private_network_through_a_server_network(built):
    settings, _client, program = built
    subnet = program.one("hcloud:index/networkSubnet:NetworkSubnet")
    nic = program.one("hcloud:index/serverNetwork:ServerNetwork")
    assert subnet.inputs["networkZone"] == "eu-central"
    assert subnet.inputs["ipRange"] == str(settings.private_subnet)
    assert subnet.urn in nic.dependencies
    assert nic.inputs["ip"] == str(settings.private_subnet.network_address + 2)


def test_data_volume_is_neither_formatted_nor_mounted_by_the_provider_and_is_protected(built):
    settings, _client, program = built
    volume = program.one(VOLUME)
    assert "format" not in volume.inputs
    assert volume.inputs["automount"] is False
    assert volume.inputs["deleteProtection"] is True
    assert volume.inputs["size"] == settings.data_volume_gb
    assert volume.inputs["location"] == settings.location
    assert volume.protect is True and volume.retain_on_delete is True
    attachment = program.one("hcloud:index/volumeAttachment:VolumeAttachment")
    assert attachment.inputs["automount"] is False


def test_luks_key_is_protected_against_replacement(built):
    _settings, _client, program = built
    assert _named(program, "luks-key").protect is True


def test_firewall_opens_only_https_and_wireguard(built):
    settings, _client, program = built
    rules = program.one(FIREWALL).inputs["rules"]
    opened = sorted((r["protocol"], r["port"]) for r in rules if r["direction"] == "in")
    expected = [("udp", str(settings.vpn.port))] + ([("tcp", "443"), ("tcp", "80")] if settings.public else [])
    assert opened == sorted(expected)
    for rule in rules:
        assert rule["sourceIps"] == ["0.0.0.0/0", "::/0"]


def test_host_bundle_is_the_pinned_object_in_the_backup_bucket_and_precedes_the_server(built):
    settings, _client, program = built
    host = render_host(settings)
    server, bundle = program.one(SERVER), program.one("aws:s3/bucketObjectv2:BucketObjectv2")
    assert server.inputs["userData"] == host.user_data
    assert bundle.inputs["content"] == host.bundle and bundle.inputs["key"] == host.pin.key
    assert hashlib.sha256(bundle.inputs["content"].encode()).hexdigest() in host.user_data
    (bucket,) = [b for b in program.of_type("aws:s3/bucket:Bucket") if b.name.endswith("-backup-bucket")]
    assert bucket.urn in bundle.dependencies
    assert bundle.inputs["contentType"] == "application/yaml"
    # Kept when a new bundle replaces it: locked, and the record of what a host ran.
    assert bundle.retain_on_delete is True
    assert bundle.urn in server.dependencies
    assert "backup-aws" in bundle.provider  # the backup bucket's EU provider


def test_user_data_is_known_plain_cloud_config_without_secrets(built):
    _settings, client, program = built
    user_data = program.one(SERVER).inputs["userData"]
    assert isinstance(user_data, str) and user_data.startswith("#cloud-config\n")
    secret_values = [r.outputs["result"] for r in program.of_type("random:index/randomPassword:RandomPassword")]
    secret_values += [r.outputs["base64"] for r in program.of_type("random:index/randomBytes:RandomBytes")]
    for value in secret_values:
        assert value and value not in user_data
    bundle = program.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["content"]
    for value in secret_values:
        assert value not in bundle
    for r in program.registrations:
        if r.type == "vault:kv/secretV2:SecretV2":
            continue  # where the secrets belong, sent as Pulumi secrets (tests/unit/test_secrets.py)
        for value in secret_values:
            assert value not in repr(r.inputs), f"secret value in inputs of {r.name}"


def test_wireguard_private_key_stays_secret_and_public_key_is_derived(built):
    _settings, client, program = built
    private_b64 = _named(program, "vpn-private-key").outputs["base64"]
    assert _value(client.vpn_host_public_key) == _public_key_of(private_b64)
    assert _sync_await(client.vpn_host_public_key.is_secret()) is False


def test_stack_outputs(built):
    settings, client, _program = built
    assert _value(client.vpn_endpoint).endswith(f":{settings.vpn.port}")
    assert _value(client.vpn_host_address) == str(settings.vpn.host_address)
    assert _value(client.boot_secrets_path) == f"odoo-hosting/clients/{settings.client_id}/boot"


def test_public_key_of_matches_x25519():
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    expected = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    assert _public_key_of(base64.b64encode(raw).decode()) == expected


@pytest.mark.parametrize("value", ["PREFLIGHT-SECRET", base64.b64encode(b"short").decode(), ""])
def test_public_key_of_rejects_non_keys(value):
    assert _public_key_of(value) is None


def test_firewall_rules_for_vpn_only_open_only_wireguard():
    assert firewall_rules(public=False, vpn_port=51999) == [
        dict(direction="in", protocol="udp", port="51999", source_ips=["0.0.0.0/0", "::/0"],
             description="WireGuard VPN (SSH and maintenance go through it)")]


def test_host_args_refuse_non_cloud_config_user_data():
    settings = example_settings("example-public")
    with pytest.raises(ValueError, match="cloud-config"):
        HostArgs(client_id="x-client", location="fsn1", server_type="cx33", image="debian-12",
                 ssh_keys=settings.ssh_keys, user_data="#!/bin/sh\n", firewall_id=1,
                 private_network=settings.private_network, private_subnet=settings.private_subnet,
                 data_volume_gb=20, server_protection=True, labels=settings.labels)


def test_host_args_refuse_user_data_hetzner_would_refuse():
    settings = example_settings("example-private")
    args = dict(client_id="x-client", location="fsn1", server_type="cx33", image="debian-12",
                ssh_keys=settings.ssh_keys, firewall_id=1, private_network=settings.private_network,
                private_subnet=settings.private_subnet, data_volume_gb=20, server_protection=True,
                labels=settings.labels)
    user_data = render_cloud_config(settings)
    HostArgs(user_data=user_data, **args)  # the example fits
    too_big = user_data + "#" * (HETZNER_USER_DATA_LIMIT - len(user_data.encode()) + 1)
    with pytest.raises(ValueError, match=rf"is {HETZNER_USER_DATA_LIMIT + 1} bytes; Hetzner accepts at most"):
        HostArgs(user_data=too_big, **args)


def _main_config(stack: str) -> dict[str, str]:
    import json
    return {f"odoo-hosting:{k}": v if isinstance(v, str) else json.dumps(v)
            for k, v in example_raw_config(stack).items()}


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_main_program_builds_one_client_stack(pulumi_run, stack):
    program = pulumi_run(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
                         config=_main_config(stack), stack=stack)
    assert len(program.of_type("odoo-hosting:client:ClientStack")) == 1
    assert len(program.of_type(SERVER)) == 1


def test_main_program_stops_on_a_config_mistake_with_a_run_error(pulumi_run):
    config = _main_config("example-public")
    config["odoo-hosting:location"] = "us-east"
    with pytest.raises(SettingsError, match="odoo-hosting:location: got 'us-east'"):
        pulumi_run(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
                   config=config, stack="example-public")
