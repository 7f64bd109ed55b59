"""Call the policies directly, the way the analyzer does, and collect violations.

Props go through the SDK's ``unknown_checking_proxy`` like in the engine, so
a value set to :data:`UNKNOWN` raises ``UnknownValueError`` when a policy
reads it. Baselines are compliant resources; tests change one field.
:func:`run_policy` drives a stack policy too: the resource becomes a stack of
one (plus ``stack=[...]``), so per-server tests keep their shape.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POLICIES_DIR = ROOT / "policies"
if str(POLICIES_DIR) not in sys.path:
    sys.path.insert(0, str(POLICIES_DIR))

from pulumi_policy import (  # noqa: E402
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError  # noqa: E402  (what args.not_applicable() raises)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy  # noqa: E402

UNKNOWN = UNKNOWN_STRING_VALUE

CLIENT_STACK = "odoo-hosting:client:ClientStack"


def urn_of(resource_type: str, name: str, *, client_stack: bool = True) -> str:
    """The URN the engine gives a resource: by default a child of an odoo-hosting ClientStack (as in this
    program's stacks, so the client-stack rules judge it); ``client_stack=False`` for any other program."""
    chain = f"{CLIENT_STACK}${resource_type}" if client_stack else resource_type
    return f"urn:pulumi:dev::odoo-hosting::{chain}::{name}"

SERVER = "hcloud:index/server:Server"
FIREWALL = "hcloud:index/firewall:Firewall"
FIREWALL_ATTACHMENT = "hcloud:index/firewallAttachment:FirewallAttachment"
VOLUME = "hcloud:index/volume:Volume"
VOLUME_ATTACHMENT = "hcloud:index/volumeAttachment:VolumeAttachment"
NETWORK = "hcloud:index/network:Network"
SUBNET = "hcloud:index/networkSubnet:NetworkSubnet"
SSH_KEY = "hcloud:index/sshKey:SshKey"
AWS_PROVIDER = "pulumi:providers:aws"
BUCKET = "aws:s3/bucket:Bucket"

HARDENING_DROP_IN = """\
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AuthenticationMethods publickey
MaxAuthTries 3
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
"""


def cloud_config(drop_in: str = HARDENING_DROP_IN, *, path: str = "/etc/ssh/sshd_config.d/10-hardening.conf",
                 ssh_pwauth: str | None = "false", extra_files: str = "", extra: str = "") -> str:
    """A realistic key-only cloud-config; arguments change one thing."""
    indented = "".join(f"      {line}\n" for line in drop_in.splitlines())
    pw = f"ssh_pwauth: {ssh_pwauth}\n" if ssh_pwauth is not None else ""
    return (
        "#cloud-config\n"
        "hostname: acme-odoo\n"
        "disable_root: true\n"
        f"{pw}"
        "users:\n"
        "  - name: ops\n"
        "    groups: [sudo]\n"
        "    shell: /bin/bash\n"
        "    lock_passwd: true\n"
        "    ssh_authorized_keys:\n"
        "      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJBOG4dWQSWkLsAhbV6sQyxxW1wZoE8o2vRUPWqrMotW alice@ops\n"
        "package_update: true\n"
        "packages: [fail2ban, nftables, unattended-upgrades, cryptsetup, wireguard]\n"
        "write_files:\n"
        f"  - path: {path}\n"
        "    owner: root:root\n"
        "    permissions: '0644'\n"
        "    content: |\n"
        f"{indented}"
        f"{extra_files}"
        "runcmd:\n"
        "  - [systemctl, restart, ssh]\n"
        f"{extra}"
    )


def good_server() -> dict[str, Any]:
    return {
        "name": "acme-odoo",
        "serverType": "cx33",
        "image": "debian-12",
        "location": "fsn1",
        "sshKeys": ["12345", "12346"],
        "firewallIds": [4242],
        "userData": cloud_config(),
        "labels": {"client": "acme", "exposure": "public"},
        "deleteProtection": True,
        "rebuildProtection": True,
        "publicNets": [{"ipv4Enabled": True, "ipv6Enabled": True}],
    }


def good_firewall() -> dict[str, Any]:
    world = ["0.0.0.0/0", "::/0"]
    return {
        "name": "acme-firewall",
        "labels": {"client": "acme", "exposure": "public"},
        "rules": [
            {"direction": "in", "protocol": "udp", "port": "51820", "sourceIps": list(world), "description": "WireGuard"},
            {"direction": "in", "protocol": "tcp", "port": "443", "sourceIps": list(world), "description": "HTTPS"},
            {"direction": "in", "protocol": "tcp", "port": "80", "sourceIps": list(world), "description": "HTTP"},
            {"direction": "in", "protocol": "icmp", "sourceIps": list(world), "description": "ping"},
            {"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": ["10.66.0.0/24"], "description": "SSH over VPN"},
        ],
    }


def good_volume() -> dict[str, Any]:
    return {
        "name": "acme-data",
        "size": 40,
        "location": "fsn1",
        "deleteProtection": True,
        "automount": False,
        "labels": {"client": "acme"},
    }


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect, ignore_changes=[], delete_before_replace=None, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[], parent=None)


def provider(region: str | None, name: str = "eu-provider") -> PolicyProviderResource:
    props = {"region": region} if region is not None else {}
    return PolicyProviderResource(AWS_PROVIDER, unknown_checking_proxy(copy.deepcopy(props)),
                                  f"urn:pulumi:dev::odoo-hosting::{AWS_PROVIDER}::{name}", name)


def run_policy(policy: Any, resource_type: str, props: Mapping[str, Any], *, name: str = "res",
               protect: bool = False, provider_resource: PolicyProviderResource | None = None,
               config: Mapping[str, Any] | None = None, stack: list[PolicyResource] | None = None,
               client_stack: bool = True) -> list[str]:
    """The violation messages ``policy`` reports for one resource ([] when the policy answers
    "not applicable" for its type; :func:`not_applicable_reason` tells that apart). A stack policy
    judges a stack of that resource and the ``stack`` resources."""
    try:
        if isinstance(policy, StackValidationPolicy):
            return run_stack_policy(policy, [stack_resource(resource_type, props, name, client_stack=client_stack),
                                             *(stack or [])], config)
        return _validate_resource(policy, resource_type, props, name=name, protect=protect,
                                  provider_resource=provider_resource, config=config, client_stack=client_stack)
    except _NotApplicableError:
        return []


def _validate_resource(policy: Any, resource_type: str, props: Mapping[str, Any], *, name: str = "res",
                       protect: bool = False, provider_resource: PolicyProviderResource | None = None,
                       config: Mapping[str, Any] | None = None, client_stack: bool = True) -> list[str]:
    violations: list[str] = []
    args = ResourceValidationArgs(
        resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))),
        urn_of(resource_type, name, client_stack=client_stack), name,
        opts(protect), provider_resource, config)
    policy.validate(args, lambda message, urn=None: violations.append(message))
    return violations


def not_applicable_reason(policy: Any, resource_type: str, props: Mapping[str, Any] | None = None,
                          **kwargs: Any) -> str | None:
    """The reason ``policy`` gives when it calls ``args.not_applicable(...)`` for ``resource_type``
    (the SDK's PolicyNotApplicable entry), or None when it judges the resource (violations or not).
    A judged resource may raise anything else (e.g. UnknownValueError); that propagates."""
    try:
        _validate_resource(policy, resource_type, props or {}, **kwargs)
    except _NotApplicableError as e:
        return e.message
    return None


def stack_resource(resource_type: str, props: Mapping[str, Any], name: str, *,
                   dependencies: list[PolicyResource] | None = None,
                   property_dependencies: dict[str, list[PolicyResource]] | None = None,
                   client_stack: bool = True) -> PolicyResource:
    return PolicyResource(
        resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))),
        urn_of(resource_type, name, client_stack=client_stack), name, opts(), None, None,
        list(dependencies or []), dict(property_dependencies or {}))


def stack_violations(policy: Any, resources: list[PolicyResource],
                     config: Mapping[str, Any] | None = None) -> list[tuple[str, str | None]]:
    """(message, URN) of each violation a stack policy reports; "not applicable" raises
    ``_NotApplicableError`` (see :func:`stack_not_applicable_reason`)."""
    violations: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources, config),
                    lambda message, urn=None: violations.append((message, urn)))
    return violations


def run_stack_policy(policy: Any, resources: list[PolicyResource],
                     config: Mapping[str, Any] | None = None) -> list[str]:
    return [message for message, _urn in stack_violations(policy, resources, config)]


def stack_not_applicable_reason(policy: Any, resources: list[PolicyResource]) -> str | None:
    """The reason a stack policy gives for ``args.not_applicable(...)``, None when it judges the stack."""
    try:
        stack_violations(policy, resources)
    except _NotApplicableError as e:
        return e.message
    return None


# --- the host bundle: user-data pins it, the stack stores it as a bucket object ---------

BUNDLE_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
BUNDLE_BUCKET = "odoo-hosting-acme-backups"


def bundle_sha256(bundle: str) -> str:
    return hashlib.sha256(bundle.encode("utf-8")).hexdigest()


def bundle_object(bundle: Any, *, name: str = "host-bundle", key: str | None = None,
                  bucket: Any = BUNDLE_BUCKET, resource_type: str = BUNDLE_OBJECT) -> PolicyResource:
    """The bucket object the stack stores a bundle in (at its content-addressed key unless ``key``)."""
    if key is None:
        key = f"host-bundle/{bundle_sha256(bundle)}.yaml" if isinstance(bundle, str) else "host-bundle/x.yaml"
    return stack_resource(resource_type, {"bucket": bucket, "key": key, "content": bundle,
                                          "contentType": "application/yaml"}, name)


def repin(user_data: str, old_bundle: str, new_bundle: str) -> str:
    """user-data pinning ``new_bundle`` where it pinned ``old_bundle`` (the sha256 and the url)."""
    old, new = bundle_sha256(old_bundle), bundle_sha256(new_bundle)
    assert old in user_data
    return user_data.replace(old, new)


def server_with(user_data: Any) -> dict[str, Any]:
    props = good_server()
    props["userData"] = user_data
    return props


@functools.cache
def rendered_host(stack: str = "example-public") -> Any:
    """The real renderer's user-data and bundle for an example stack (``.user_data``, ``.bundle``, ``.pin``)."""
    from components.hostconfig import render_host
    from tests.conftest import example_settings
    return render_host(example_settings(stack))


def host_stack(user_data: Any, bundle: Any, *, pin: Any, **object_args: Any) -> list[PolicyResource]:
    """The rendered server and its bundle object (in the bucket the pin names) as a stack."""
    object_args.setdefault("bucket", pin.bucket)
    return [stack_resource(SERVER, server_with(user_data), "acme-host"), bundle_object(bundle, **object_args)]
