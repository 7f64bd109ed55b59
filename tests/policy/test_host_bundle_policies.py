"""The host files in the bundle user-data pins: judged at preview where they now live.

The real renderer's user-data and bundle (``render_host``) are the baseline;
each test changes one thing in the bundle (re-pinning user-data to it) or in
the stack that holds it.
"""

from __future__ import annotations

import pytest
import yaml

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._servicer import SECRET_INPUTS_ATTR
from odoo_hosting_policies.backupagent import hcloud_server_backup_agent
from odoo_hosting_policies.cloudconfig import host_cloud_config
from odoo_hosting_policies.hostbundle import hcloud_server_host_bundle
from odoo_hosting_policies.hostsoftware import hcloud_server_fail2ban, hcloud_server_unattended_upgrades
from odoo_hosting_policies.ssh import hcloud_server_sshd_key_only
from tests.conftest import EXAMPLE_STACKS

from .conftest import (
    BUNDLE_OBJECT,
    SERVER,
    UNKNOWN,
    bundle_object,
    bundle_sha256,
    good_server,
    host_stack,
    rendered_host,
    repin,
    run_stack_policy,
    server_with,
    stack_not_applicable_reason,
    stack_resource,
    stack_violations,
    urn_of,
)

HOST_FILES = {
    "sshd": hcloud_server_sshd_key_only,
    "fail2ban": hcloud_server_fail2ban,
    "unattended": hcloud_server_unattended_upgrades,
    "backup": hcloud_server_backup_agent,
}
ALL_HOST = [*HOST_FILES.values(), hcloud_server_host_bundle]
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-odoo-hosting.conf"


def _ids(policy):
    return policy.name


def stack_for(bundle=None, *, user_data=None, stack="example-public", **object_args):
    """The example host with ``bundle`` (the rendered one by default) pinned and stored."""
    host = rendered_host(stack)
    bundle = host.bundle if bundle is None else bundle
    user_data = repin(host.user_data, host.bundle, bundle) if user_data is None else user_data
    return host_stack(user_data, bundle, pin=host.pin, **object_args)


def edited(old: str, new: str, stack: str = "example-public") -> str:
    """The rendered bundle with one text edited."""
    bundle = rendered_host(stack).bundle
    assert old in bundle
    return bundle.replace(old, new, 1)


def messages(policy, resources, config=None):
    return run_stack_policy(policy, resources, config)


# --- the rendered hosts pass; the same files in the bundle, weakened, fail ------------------

@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
@pytest.mark.parametrize("policy", ALL_HOST, ids=_ids)
def test_the_rendered_host_and_its_bundle_pass(policy, stack):
    assert messages(policy, stack_for(stack=stack)) == []


@pytest.mark.parametrize("policy", ALL_HOST, ids=_ids)
def test_a_bundle_in_a_v1_bucket_object_is_found_too(policy):
    assert messages(policy, stack_for(resource_type="aws:s3/bucketObject:BucketObject")) == []


def test_user_data_alone_has_none_of_the_bundled_files():
    """The files live in the bundle: judged without it, user-data alone would fail (so passing above
    means the bundle was read)."""
    host = rendered_host()
    doc = yaml.safe_load(host.user_data)
    boot = next(f for f in doc["write_files"] if f["path"] == "/etc/odoo-hosting/boot.json")
    doc["write_files"].remove(boot)
    unpinned = "#cloud-config\n" + yaml.safe_dump(doc)
    server = [stack_resource(SERVER, server_with(unpinned), "acme-host")]
    for policy in HOST_FILES.values():
        assert messages(policy, server), policy.name


def test_a_weak_sshd_drop_in_in_the_bundle_is_flagged():
    resources = stack_for(edited("PasswordAuthentication no\n", "PasswordAuthentication yes\n"))
    [(message, urn)] = stack_violations(hcloud_server_sshd_key_only, resources)
    assert "PasswordAuthentication" in message and "host bundle" in message
    assert urn == resources[0].urn


def test_a_later_bundle_file_wins_over_user_data_for_the_same_path():
    host = rendered_host()
    weak = ("- path: " + SSHD_DROPIN + "\n  content: |\n    PasswordAuthentication yes\n    PermitRootLogin yes\n")
    user_data = host.user_data.replace("write_files:\n", "write_files:\n" + weak, 1)
    assert messages(hcloud_server_sshd_key_only, stack_for(user_data=user_data)) == []
    # ... and a weak bundle file is not saved by a strong user-data one.
    bundle = edited("MaxAuthTries 3\n", "MaxAuthTries 10\n")
    strong = "- path: " + SSHD_DROPIN + "\n  content: |\n    MaxAuthTries 3\n"
    user_data = repin(host.user_data, host.bundle, bundle).replace("write_files:\n", "write_files:\n" + strong, 1)
    [message] = messages(hcloud_server_sshd_key_only, stack_for(bundle, user_data=user_data))
    assert "MaxAuthTries" in message


def test_a_weak_fail2ban_jail_in_the_bundle_is_flagged():
    found = messages(hcloud_server_fail2ban, stack_for(edited("maxretry = 5\n", "maxretry = 20\n")))
    assert found and all("maxretry 20" in m and "host bundle" in m for m in found)  # [sshd] and [odoo]


def test_a_weak_unattended_upgrades_config_in_the_bundle_is_flagged():
    bundle = edited('Unattended-Upgrade::Automatic-Reboot "true";', 'Unattended-Upgrade::Automatic-Reboot "false";')
    [message] = messages(hcloud_server_unattended_upgrades, stack_for(bundle))
    assert "Automatic-Reboot" in message and "host bundle" in message


def test_a_weekly_backup_timer_in_the_bundle_is_flagged():
    bundle = edited("OnCalendar=*-*-* 01:30:00 UTC", "OnCalendar=weekly")
    [message] = messages(hcloud_server_backup_agent, stack_for(bundle))
    assert "every 7 day(s)" in message and "host bundle" in message


def test_the_bundle_activation_enables_the_backup_timers():
    bundle = edited("- [systemctl, enable, --now, odoo-hosting-backup.timer, odoo-hosting-backup-check.timer]\n", "")
    found = messages(hcloud_server_backup_agent, stack_for(bundle))
    assert any("odoo-hosting-backup.timer is not enabled" in m for m in found), found


# --- fail closed: a pin the stack does not resolve -------------------------------------------

def _pin_text(stack="example-public"):
    pin = rendered_host(stack).pin
    return pin.sha256[:12], pin.url


def _server_only():
    return stack_for()[:1]


def test_a_pin_with_no_object_in_the_stack_is_a_violation_and_the_host_files_are_reported():
    resources = _server_only()
    sha, url = _pin_text()
    [(message, urn)] = stack_violations(hcloud_server_host_bundle, resources)
    assert sha in message and url in message and "no S3 bucket object" in message
    assert "render_host" in message and urn == resources[0].urn
    for name, policy in HOST_FILES.items():
        [(reported, urn)] = stack_violations(policy, resources)
        assert sha in reported and "cannot be checked" in reported, name
        assert urn == resources[0].urn


def test_the_host_bundle_policy_is_mandatory():
    assert hcloud_server_host_bundle.enforcement_level is None  # the pack's level: mandatory
    assert hcloud_server_host_bundle in ALL_POLICIES
    assert set(hcloud_server_host_bundle.framework.reference.split(",")) == {
        "ACC-01", "ACC-02", "ACC-04", "SWU-01", "BKP-01"}


def test_an_object_with_other_content_is_a_hash_mismatch():
    host = rendered_host()
    resources = stack_for()
    resources[1] = bundle_object(host.bundle + "# changed\n", key=host.pin.key, bucket=host.pin.bucket)
    [message] = messages(hcloud_server_host_bundle, resources)
    assert "not the pinned one" in message and host.pin.key in message
    for policy in HOST_FILES.values():
        [reported] = messages(policy, resources)
        assert "cannot be checked" in reported


@pytest.mark.parametrize("content,words", [(UNKNOWN, "unknown at preview"), (None, "no content string")])
def test_an_object_whose_content_cannot_be_read_does_not_resolve_the_pin(content, words):
    resources = _server_only() + [bundle_object(content)]
    [message] = messages(hcloud_server_host_bundle, resources)
    assert words in message
    for policy in HOST_FILES.values():
        assert len(messages(policy, resources)) == 1


@pytest.mark.parametrize("bundle,words", [
    ("files: []\n", "does not start with the line #odoo-hosting-bundle v1"),
    ("#odoo-hosting-bundle v1\nfiles: [\n", "not valid YAML"),
    ("#odoo-hosting-bundle v1\nactivate: []\n", "no files list"),
    ("#odoo-hosting-bundle v1\nfiles:\n- path: /etc/x\n  content: eA==\n  encoding: b64\n  owner: root:root\n"
     "  permissions: '0644'\n", "plain text"),
    ("#odoo-hosting-bundle v1\nfiles:\n- path: /etc/x\n  content: x\n", "no owner"),
    ("#odoo-hosting-bundle v1\nfiles: []\nactivate: [systemctl daemon-reload]\n", "activate"),
])
def test_an_unreadable_bundle_is_a_violation_and_the_host_files_are_reported(bundle, words):
    resources = stack_for(bundle)
    [message] = messages(hcloud_server_host_bundle, resources)
    assert words in message and bundle_sha256(bundle)[:12] in message
    for policy in HOST_FILES.values():
        [reported] = messages(policy, resources)
        assert "cannot be checked" in reported and words in reported


def test_a_pin_without_a_sha256_is_a_violation():
    host = rendered_host()
    user_data = host.user_data.replace(f'"sha256": "{host.pin.sha256}"', '"sha256": "latest"')
    resources = stack_for(user_data=user_data)
    [message] = messages(hcloud_server_host_bundle, resources)
    assert "without a sha256" in message
    assert all(len(messages(policy, resources)) == 1 for policy in HOST_FILES.values())


def test_an_object_at_another_key_than_the_url_is_a_violation():
    [message] = messages(hcloud_server_host_bundle, stack_for(key="host-bundle/current.yaml"))
    assert "host-bundle/current.yaml" in message and "would not find it" in message
    [message] = messages(hcloud_server_host_bundle, stack_for(bucket="someone-elses-bucket"))
    assert "someone-elses-bucket" in message


def test_an_object_bucket_unknown_at_preview_is_not_held_against_the_pin():
    assert messages(hcloud_server_host_bundle, stack_for(bucket=UNKNOWN)) == []


# --- no secret in a bundle --------------------------------------------------------------------

PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize("secret,words", [
    (PEM, "PEM private key"),
    ("PREFLIGHT-SECRET-content-0123456789ab\n", "secret value"),
])
def test_a_bundle_holding_a_secret_is_a_violation(secret, words):
    commented = "".join(f"    # {line}\n" for line in secret.splitlines())  # inside the drop-in's block
    bundle = edited("PasswordAuthentication no\n", "PasswordAuthentication no\n" + commented)
    resources = stack_for(bundle)
    [(message, urn)] = stack_violations(hcloud_server_host_bundle, resources)
    assert words in message and urn == resources[1].urn
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in message


def test_a_bundle_the_engine_marks_secret_is_a_violation():
    resources = stack_for()
    setattr(resources[1], SECRET_INPUTS_ATTR, frozenset({"content"}))  # as the pack's servicer records it
    [message] = messages(hcloud_server_host_bundle, resources)
    assert "marked secret" in message


def _analyze_stack(*, secret: bool):
    """The pack's servicer on a stack whose bundle content the engine sends marked secret (or not)."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

    from odoo_hosting_policies._servicer import FastAnalyzerServicer

    host = rendered_host()
    content = {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": host.bundle} if secret else host.bundle
    requests = []
    for resource_type, props in ((SERVER, server_with(host.user_data)),
                                 (BUNDLE_OBJECT, {"bucket": host.pin.bucket, "key": host.pin.key, "content": content})):
        properties = struct_pb2.Struct()
        properties.update(props)
        requests.append(analyzer_pb2.AnalyzerResource(type=resource_type, properties=properties, name="r",
                                                      urn=urn_of(resource_type, "r")))
    servicer = FastAnalyzerServicer("odoo-hosting", "0.0.1", ALL_POLICIES, EnforcementLevel.MANDATORY)
    response = servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=requests), None)
    return [d for d in response.diagnostics if d.policyName == hcloud_server_host_bundle.name]


def test_the_pack_servicer_passes_on_what_the_engine_marks_secret():
    assert _analyze_stack(secret=False) == []
    [diagnostic] = _analyze_stack(secret=True)
    assert "marked secret" in diagnostic.message and diagnostic.urn.endswith(f"{BUNDLE_OBJECT}::r")


def test_an_unpinned_bundle_object_is_checked_for_secrets_too():
    bundle = "#odoo-hosting-bundle v1\nfiles:\n- path: /root/key\n  content: |\n    " + PEM.replace("\n", "\n    ")
    [message] = messages(hcloud_server_host_bundle, [bundle_object(bundle, name="stray")])
    assert "'stray'" in message and "PEM private key" in message


# --- per-type rules on other programs' user-data; applicability --------------------------------

def test_a_stack_with_only_a_bundle_object_is_judged_by_the_bundle_policy_alone():
    resources = [bundle_object(rendered_host().bundle)]
    assert stack_not_applicable_reason(hcloud_server_host_bundle, resources) is None
    for policy in HOST_FILES.values():
        assert stack_not_applicable_reason(policy, resources) is not None


def test_a_server_without_a_pin_is_judged_on_its_user_data_alone():
    resources = [stack_resource(SERVER, good_server(), "plain")]
    assert messages(hcloud_server_host_bundle, resources) == []
    assert messages(hcloud_server_sshd_key_only, resources) == []


@pytest.mark.parametrize("policy", list(HOST_FILES.values()), ids=_ids)
def test_unknown_user_data_is_a_violation_per_server_not_a_crash(policy):
    resources = [stack_resource(SERVER, server_with(UNKNOWN), "unknown"), *stack_for()]
    # One violation: the unknown server's; the other server is still judged (and passes).
    [(message, urn)] = stack_violations(policy, resources)
    assert "unknown at preview" in message and urn == resources[0].urn


def test_each_server_is_judged_with_its_own_bundle():
    public = stack_for(stack="example-public")
    private = stack_for(edited("maxretry = 5\n", "maxretry = 9\n", "example-private"), stack="example-private")
    private[0] = stack_resource(SERVER, server_with(private[0].props["userData"]), "private-host")
    found = stack_violations(hcloud_server_fail2ban, public + private)
    assert found and {urn for _m, urn in found} == {private[0].urn}


def test_user_data_and_bundle_are_parsed_once_per_text():
    resources = stack_for()
    first = host_cloud_config(resources[0].props, resources)
    again = host_cloud_config(stack_for()[0].props, stack_for())
    assert first is again and first.cfg is not None
