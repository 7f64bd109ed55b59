"""The baseline's routes to the same effect: for each, a resource that breaks the control is reported
and the hardened spelling of the same resource passes. All of them outside a client stack (any program)."""

from __future__ import annotations

import base64
import gzip
import json
import secrets

import pytest
from pulumi_policy import EnforcementLevel

from odoo_hosting_policies import buckets, containers, exposure, iam, ssh, storage, tlskeys, userdata, vault
from odoo_hosting_policies._meta import CannotCheck

from .conftest import SERVER, cloud_config, good_server, run_policy, run_stack_policy, stack_resource

SG, SG_RULE, INGRESS = exposure.SECURITY_GROUP, exposure.SECURITY_GROUP_RULE, exposure.INGRESS_RULE
SG_POLICY = exposure.aws_security_group_no_admin_ingress
LB_POLICY = exposure.hcloud_load_balancer_no_admin_service


def _outside(policy, resource_type, props, **kwargs):
    return run_policy(policy, resource_type, props, client_stack=False, **kwargs)


# -- ACC-02: security groups ------------------------------------------------------------------------

@pytest.mark.parametrize("resource_type,bad,good", [
    (SG, {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]},
     {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]},
                  {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]}),
    (SG, {"ingress": [{"protocol": "tcp", "fromPort": 5000, "toPort": 6000, "ipv6CidrBlocks": ["::/0"]}]},
     {"ingress": [{"protocol": "tcp", "fromPort": 8000, "toPort": 8010, "ipv6CidrBlocks": ["::/0"]}]}),
    (SG, {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
     {"ingress": [{"protocol": "icmp", "fromPort": -1, "toPort": -1, "cidrBlocks": ["0.0.0.0/0"]}]}),
    (SG_RULE, {"type": "ingress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"],
               "securityGroupId": "sg-1"},
     {"type": "egress", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"],
      "securityGroupId": "sg-1"}),
    (INGRESS, {"ipProtocol": "tcp", "fromPort": 3306, "toPort": 3306, "cidrIpv4": "0.0.0.0/0"},
     {"ipProtocol": "tcp", "fromPort": 3306, "toPort": 3306, "referencedSecurityGroupId": "sg-app"}),
    (INGRESS, {"ipProtocol": "-1", "cidrIpv6": "::/0"}, {"ipProtocol": "-1", "cidrIpv4": "192.168.0.0/16"}),
])
def test_security_group_routes(resource_type, bad, good):
    [message] = _outside(SG_POLICY, resource_type, bad)
    assert "admin/database port" in message and "/0" in message
    assert _outside(SG_POLICY, resource_type, good) == []


def test_admin_ports_are_tunable():
    web = {"ingress": [{"protocol": "tcp", "fromPort": 8080, "toPort": 8080, "cidrBlocks": ["0.0.0.0/0"]}]}
    assert _outside(SG_POLICY, SG, web) == []
    assert _outside(SG_POLICY, SG, web, config={"adminPorts": [8080]})
    [message] = _outside(SG_POLICY, SG, web, config={"adminPorts": ["x"]})
    assert "adminPorts" in message


# -- ACC-02: load balancer services -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"loadBalancerId": "1", "protocol": "tcp", "listenPort": 22, "destinationPort": 22},
    {"loadBalancerId": "1", "protocol": "tcp", "listenPort": 2222, "destinationPort": 22},
    {"loadBalancerId": "1", "protocol": "tcp", "listenPort": 5432},
])
def test_load_balancer_service_to_an_admin_port_is_reported(bad):
    [message] = _outside(LB_POLICY, exposure.LB_SERVICE, bad)
    assert "admin/database port" in message


def test_a_load_balancer_without_a_public_interface_may_forward_ssh():
    lb = stack_resource("hcloud:index/loadBalancer:LoadBalancer", {"loadBalancerType": "lb11"}, "lb", client_stack=False)
    service = stack_resource(exposure.LB_SERVICE, {"protocol": "tcp", "listenPort": 22}, "ssh", client_stack=False,
                             property_dependencies={"loadBalancerId": [lb]})

    def network(public):
        return stack_resource(exposure.LB_NETWORK, {"enablePublicInterface": public, "networkId": 1}, "lb-net",
                              client_stack=False, property_dependencies={"loadBalancerId": [lb]})

    assert run_stack_policy(LB_POLICY, [lb, service, network(False)]) == []
    assert run_stack_policy(LB_POLICY, [lb, service, network(True)])
    assert run_stack_policy(LB_POLICY, [lb, service])


@pytest.mark.parametrize("good", [
    {"loadBalancerId": "1", "protocol": "https", "listenPort": 443, "destinationPort": 8080},
    {"loadBalancerId": "1", "protocol": "http"},
])
def test_load_balancer_web_service_passes(good):
    assert _outside(LB_POLICY, exposure.LB_SERVICE, good) == []


# -- ACC-02 / DSK-01: RDS --------------------------------------------------------------------------------

def test_rds_public_instance_is_reported_and_the_private_one_passes():
    policy = storage.aws_rds_not_public
    [message] = _outside(policy, storage.RDS_INSTANCE, {"publiclyAccessible": True, "storageEncrypted": True})
    assert "publiclyAccessible" in message
    assert _outside(policy, storage.RDS_INSTANCE, {"publiclyAccessible": False}) == []
    assert _outside(policy, storage.RDS_INSTANCE, {}) == []  # the provider's default is private


@pytest.mark.parametrize("resource_type", [storage.RDS_INSTANCE, storage.RDS_CLUSTER])
def test_rds_unencrypted_storage_is_reported_and_encrypted_passes(resource_type):
    policy = storage.aws_rds_encrypted
    for bad in ({}, {"storageEncrypted": False}):
        [message] = _outside(policy, resource_type, bad)
        assert "storageEncrypted" in message
    assert _outside(policy, resource_type, {"storageEncrypted": True}) == []


# -- DSK-01: EBS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("resource_type,bad,good", [
    (storage.EBS_VOLUME, {"size": 10}, {"size": 10, "encrypted": True}),
    (storage.EC2_INSTANCE, {"ami": "ami-1"}, {"ami": "ami-1", "rootBlockDevice": {"encrypted": True}}),
    (storage.EC2_INSTANCE, {"rootBlockDevice": {"encrypted": True}, "ebsBlockDevices": [{"deviceName": "/dev/sdf"}]},
     {"rootBlockDevice": {"encrypted": True}, "ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": True}]}),
    (storage.LAUNCH_TEMPLATE, {"blockDeviceMappings": [{"ebs": {"volumeSize": 8}}]},
     {"blockDeviceMappings": [{"ebs": {"volumeSize": 8, "encrypted": "true"}}]}),
])
def test_ebs_routes(resource_type, bad, good):
    [message] = _outside(storage.aws_ebs_encrypted, resource_type, bad)
    assert "encrypted" in message
    assert _outside(storage.aws_ebs_encrypted, resource_type, good) == []
    # account-wide encryption by default in the stack covers them
    default_on = stack_resource(storage.EBS_DEFAULT, {"enabled": True}, "ebs-default", client_stack=False)
    assert _outside(storage.aws_ebs_encrypted, resource_type, bad, stack=[default_on]) == []
    default_off = stack_resource(storage.EBS_DEFAULT, {"enabled": False}, "ebs-default", client_stack=False)
    assert _outside(storage.aws_ebs_encrypted, resource_type, bad, stack=[default_off])


def test_ebs_encryption_unknown_at_preview_is_cannot_check():
    from .conftest import UNKNOWN
    with pytest.raises(CannotCheck, match="EBS encryption"):
        _outside(storage.aws_ebs_encrypted, storage.EBS_VOLUME, {"encrypted": UNKNOWN})


# -- BKP-05: managed admin policies ---------------------------------------------------------------------

@pytest.mark.parametrize("resource_type", iam.ATTACHMENT_TYPES)
@pytest.mark.parametrize("arn", ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/AmazonS3FullAccess",
                                 "arn:aws:iam::aws:policy/PowerUserAccess"])
def test_attaching_a_managed_admin_policy_is_reported(resource_type, arn):
    [message] = _outside(iam.iam_no_admin_managed_policy, resource_type, {"policyArn": arn, "role": "r"})
    assert arn.rsplit("/", 1)[-1] in message


@pytest.mark.parametrize("arn", ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                                 "arn:aws:iam::123456789012:policy/my-backup-writer"])
def test_attaching_a_narrow_policy_passes(arn):
    for resource_type in iam.ATTACHMENT_TYPES:
        assert _outside(iam.iam_no_admin_managed_policy, resource_type, {"policyArn": arn}) == []


def test_a_roles_managed_policy_arns_are_judged():
    bad = {"assumeRolePolicy": "{}", "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}
    assert _outside(iam.iam_no_admin_managed_policy, iam.ROLE, bad)
    assert _outside(iam.iam_no_admin_managed_policy, iam.ROLE, {"managedPolicyArns": []}) == []


def test_an_attached_policy_arn_unknown_at_preview_is_one_this_stack_creates():
    # AWS's managed ARNs are literals; an unknown one is a policy being created (arn:aws:iam::<account>:...).
    from pulumi_policy.proxy import UnknownValueError

    from .conftest import UNKNOWN
    for resource_type in iam.ATTACHMENT_TYPES:
        assert _outside(iam.iam_no_admin_managed_policy, resource_type, {"policyArn": UNKNOWN, "user": "u"}) == []
    listed = {"assumeRolePolicy": "{}", "managedPolicyArns": [UNKNOWN, "arn:aws:iam::aws:policy/AdministratorAccess"]}
    assert _outside(iam.iam_no_admin_managed_policy, iam.ROLE, listed)
    with pytest.raises(UnknownValueError):  # a wholly unknown list may hold an admin ARN: cannot check
        _outside(iam.iam_no_admin_managed_policy, iam.ROLE, {"managedPolicyArns": UNKNOWN})


@pytest.mark.parametrize("resource_type", [iam.ROLE_POLICY, iam.USER_POLICY])
def test_inline_role_and_user_policies_are_judged(resource_type):
    wide = '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    narrow = '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}'
    assert _outside(iam.iam_policy_least_privilege, resource_type, {"policy": wide})
    assert _outside(iam.iam_policy_least_privilege, resource_type, {"policy": narrow}) == []


# -- ACC-01: sshd changed by a command -------------------------------------------------------------------

SSHD_KEY_ONLY = ssh.hcloud_server_sshd_key_only


@pytest.mark.parametrize("commands", [
    "  - sed -i 's/^#\\?PasswordAuthentication.*/PasswordAuthentication yes/' /etc/ssh/sshd_config\n",
    "  - [sh, -c, 'echo PermitRootLogin yes >> /etc/ssh/sshd_config.d/99-x.conf']\n",
    "  - cp /root/sshd.conf /etc/ssh/sshd_config\n",
])
def test_sshd_edited_by_a_command_is_reported(commands):
    for module in ("runcmd", "bootcmd"):
        user_data = cloud_config(extra=f"{module}:\n{commands}")
        messages = _outside(SSHD_KEY_ONLY, SERVER, {**good_server(), "userData": user_data})
        assert any(f"a {module} command" in m for m in messages), (module, messages)


def test_commands_that_leave_sshd_alone_pass():
    user_data = cloud_config(extra="bootcmd:\n  - [systemctl, reload, ssh]\n  - echo hello > /etc/motd\n")
    assert _outside(SSHD_KEY_ONLY, SERVER, {**good_server(), "userData": user_data}) == []


# -- SEC-01: passwords in user-data ------------------------------------------------------------------------

PW_POLICY = userdata.server_user_data_no_plaintext_password
SECRET = "pw-" + secrets.token_hex(8)  # made up per run: no password in the fixture


@pytest.mark.parametrize("extra", [
    f"chpasswd:\n  expire: false\n  users:\n    - {{name: root, password: {SECRET}, type: text}}\n",
    f"chpasswd:\n  list: |\n    root:{SECRET}\n",
    f"chpasswd:\n  list: ['ops:{SECRET}']\n",
    f"password: {SECRET}\n",
    f"runcmd2: x\nbootcmd:\n  - echo 'root:{SECRET}' | chpasswd\n",
])
def test_plaintext_password_in_cloud_config_is_reported_without_the_value(extra):
    user_data = cloud_config() + extra
    [message] = _outside(PW_POLICY, SERVER, {**good_server(), "userData": user_data})
    assert "plaintext" in message or "literal" in message
    assert SECRET not in message


def test_plain_text_passwd_on_a_user_is_reported():
    user_data = cloud_config().replace("    lock_passwd: true\n", f"    plain_text_passwd: {SECRET}\n")
    [message] = _outside(PW_POLICY, SERVER, {**good_server(), "userData": user_data})
    assert "plain_text_passwd" in message and SECRET not in message


@pytest.mark.parametrize("extra", [
    "chpasswd:\n  users:\n    - {name: ops, password: $6$rounds=4096$abc$xyz, type: hash}\n    - {name: x, type: RANDOM}\n",
    "chpasswd:\n  list: |\n    root:RANDOM\n",
    "",
])
def test_hashed_random_or_no_password_passes(extra):
    assert _outside(PW_POLICY, SERVER, {**good_server(), "userData": cloud_config() + extra}) == []


def test_a_shell_script_user_data_and_an_ec2_instance_are_judged_too():
    script = f"#!/bin/sh\necho 'root:{SECRET}' | chpasswd\n"
    assert _outside(PW_POLICY, SERVER, {**good_server(), "userData": script})
    assert _outside(PW_POLICY, userdata.EC2_INSTANCE, {"userData": script})
    encoded = base64.b64encode(gzip.compress(script.encode())).decode()
    assert _outside(PW_POLICY, userdata.EC2_INSTANCE, {"userDataBase64": encoded})
    assert _outside(PW_POLICY, userdata.LAUNCH_TEMPLATE, {"userData": base64.b64encode(script.encode()).decode()})
    assert _outside(PW_POLICY, userdata.EC2_INSTANCE, {"userData": "#!/bin/sh\napt-get update\n"}) == []
    with pytest.raises(CannotCheck, match="userDataBase64"):
        _outside(PW_POLICY, userdata.EC2_INSTANCE, {"userDataBase64": "%%%not base64"})


# -- SEC-02: Vault through other resources ------------------------------------------------------------

VAULT_ROLES = vault.vault_role_least_privilege


@pytest.mark.parametrize("resource_type,key", [
    ("vault:kubernetes/authBackendRole:AuthBackendRole", "tokenPolicies"),
    ("vault:jwt/authBackendRole:AuthBackendRole", "tokenPolicies"),
    ("vault:tokenauth/authBackendRole:AuthBackendRole", "allowedPolicies"),
    (vault.TOKEN, "policies"),
])
def test_a_role_or_token_granting_root_is_reported(resource_type, key):
    [message] = _outside(VAULT_ROLES, resource_type, {key: ["default", "root"]})
    assert key in message and "root" in message
    assert _outside(VAULT_ROLES, resource_type, {key: ["shop-read"]}) == []


def test_approle_roles_are_left_to_their_own_policy():
    assert vault.is_role_type(vault.APPROLE_ROLE) is False


def test_an_approle_secret_id_is_bound_and_generated_by_vault():
    messages = _outside(VAULT_ROLES, vault.SECRET_ID, {"roleName": "web", "secretId": SECRET})
    assert len(messages) == 2 and "cidrLists" in messages[0] and "secretId" in messages[1]
    assert SECRET not in " ".join(messages)
    assert _outside(VAULT_ROLES, vault.SECRET_ID, {"roleName": "web", "cidrLists": ["10.8.0.5/32"]}) == []


@pytest.mark.parametrize("path,data,bad", [
    ("sys/policy/shop", {"policy": 'path "secret/*" { capabilities = ["read"] }'}, True),
    ("sys/policies/acl/shop", {"policy": 'path "sys/auth" { capabilities = ["read"] }'}, True),
    ("sys/policy/shop", {"policy": 'path "kv/data/shop/web/*" { capabilities = ["read"] }'}, False),
    ("sys/policy/shop", {"rules": "?"}, True),
    ("auth/kubernetes/role/web", {"token_policies": ["root"]}, True),
    ("auth/kubernetes/role/web", {"token_policies": ["shop-read"]}, False),
    ("secret/data/shop/config", {"data": {"x": 1}}, False),
])
def test_generic_endpoints_writing_policies_or_roles(path, data, bad):
    messages = _outside(VAULT_ROLES, vault.GENERIC_ENDPOINT, {"path": path, "dataJson": json.dumps(data)})
    assert bool(messages) is bad, messages



# -- ISO-02: a swarm service is a container too ---------------------------------------------------------

SERVICE_POLICY = containers.docker_container_isolated


@pytest.mark.parametrize("bad,what", [
    ({"taskSpec": {"containerSpec": {"image": "x", "mounts": [
        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}}}, "Docker socket"),
    ({"taskSpec": {"containerSpec": {"image": "x", "capabilityAdds": ["CAP_SYS_ADMIN"]}}}, "SYS_ADMIN"),
    ({"taskSpec": {"containerSpec": {"image": "x"}}, "endpointSpec": {"ports": [{"targetPort": 5432, "publishedPort": 5432}]}},
     "5432"),
])
def test_a_swarm_service_is_judged_like_a_container(bad, what):
    [message] = _outside(SERVICE_POLICY, containers.SERVICE, bad)
    assert what in message


def test_a_hardened_swarm_service_passes():
    good = {"taskSpec": {"containerSpec": {"image": "x", "mounts": [{"type": "volume", "source": "data", "target": "/d"}],
                                           "capabilityAdds": ["NET_BIND_SERVICE"]}},
            "endpointSpec": {"ports": [{"targetPort": 80, "publishedPort": 8080}]}}
    assert _outside(SERVICE_POLICY, containers.SERVICE, good) == []


# -- BKP-04 (advisory): whose key encrypts the bucket ---------------------------------------------------

def _sse(key, deps=()):
    props = {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                             "kmsMasterKeyId": key}}]}
    return stack_resource(buckets.ENCRYPTION[0], props, "b-sse", client_stack=False,
                          property_dependencies={"rules": list(deps)})


def test_a_bucket_key_the_stack_does_not_create_is_an_advisory():
    policy = buckets.s3_bucket_key_owner
    assert policy.enforcement_level == EnforcementLevel.ADVISORY
    [aws_managed] = run_stack_policy(policy, [_sse("alias/aws/s3")])
    assert "AWS managed key" in aws_managed
    [foreign] = run_stack_policy(policy, [_sse("arn:aws:kms:eu-central-1:999999999999:key/x")])
    assert "does not create" in foreign
    key = stack_resource("aws:kms/key:Key", {"enableKeyRotation": True}, "bucket-key", client_stack=False)
    assert run_stack_policy(policy, [key, _sse("arn:aws:kms:eu-central-1:1:key/k", deps=[key])]) == []


# -- TLS-04: certificates Vault issues ---------------------------------------------------------------------

PKI_POLICY = tlskeys.vault_pki_role_floor


@pytest.mark.parametrize("bad,what", [
    ({"backend": "pki", "name": "web"}, "keyBits"),
    ({"keyType": "rsa", "keyBits": 2048}, "keyBits"),
    ({"keyType": "any"}, "any"),
    ({"keyType": "ec", "keyBits": 224}, "keyBits"),
    ({"keyType": "ec", "keyBits": 256, "maxTtl": "8760h"}, "maxTtl"),
    ({"keyType": "ec", "keyBits": 256, "maxTtl": "31536000"}, "maxTtl"),
    ({"keyType": "ec", "keyBits": 256, "maxTtl": "a year"}, "maxTtl"),
])
def test_a_weak_or_long_lived_pki_role_is_reported(bad, what):
    [message] = _outside(PKI_POLICY, tlskeys.PKI_ROLE, bad)
    assert what in message


@pytest.mark.parametrize("good", [
    {"keyType": "ec", "keyBits": 256, "maxTtl": "2160h"},
    {"keyType": "rsa", "keyBits": 4096, "maxTtl": "90d"},
    {"keyType": "ec", "maxTtl": 86400},
])
def test_a_pki_role_at_the_floor_passes(good):
    assert _outside(PKI_POLICY, tlskeys.PKI_ROLE, good) == []
