"""Every resource policy declares the types it judges (``applies_to``), so the engine gets a
PolicyNotApplicable answer for the rest and preflight can tell "kept" from "not applicable"."""

from __future__ import annotations

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._meta import CannotCheck

from .conftest import (
    AWS_PROVIDER,
    BUCKET,
    FIREWALL,
    SERVER,
    VOLUME,
    not_applicable_reason,
    stack_not_applicable_reason,
    stack_resource,
)

UNRELATED = "random:index/randomPassword:RandomPassword"
CONTAINER = "docker:index/container:Container"

# policy name -> one resource type the policy judges.
JUDGED = {
    "hcloud-resource-eu-location": SERVER,
    "aws-provider-eu-region": AWS_PROVIDER,
    "aws-resource-eu-region": "aws:sqs/queue:Queue",  # any aws:* type, not only the tagged ones
    "hcloud-server-ssh-keys-required": SERVER,
    "hcloud-firewall-no-public-ingress-except-allowed": FIREWALL,
    "hcloud-server-firewall-attached": SERVER,
    "docker-image-pinned-by-digest": "docker:index/remoteImage:RemoteImage",
    "hcloud-volume-no-provider-format": "hcloud:index/volumeAttachment:VolumeAttachment",
    "hcloud-volume-delete-protected": VOLUME,
    "hcloud-server-protection-consistent": SERVER,
    "aws-s3-bucket-protected": BUCKET,
    "aws-kms-key-protected": "aws:kms/key:Key",
    "vault-mount-protected": "vault:index/mount:Mount",
    "aws-s3-bucket-settings-hardened": "aws:s3/bucketPolicy:BucketPolicy",  # a companion, not only the bucket
    "aws-kms-key-rotation-enabled": "aws:kms/key:Key",
    "aws-iam-policy-no-wildcards": "aws:iam/role:Role",
    "hcloud-resource-client-label": "hcloud:index/network:Network",
    "aws-resource-client-tag": BUCKET,
    "docker-container-isolated": CONTAINER,
    "tls-private-key-strength": "tls:index/privateKey:PrivateKey",
    "tls-certificate-short-validity": "tls:index/locallySignedCert:LocallySignedCert",
    "vault-policy-client-scoped": "vault:index/policy:Policy",
    "vault-approle-role-bound": "vault:appRole/authBackendRole:AuthBackendRole",
    "docker-proxy-https-only": (CONTAINER, {"labels": [{"label": "odoo-hosting/role", "value": "proxy"}]}),
    "docker-odoo-conf-hardened": CONTAINER,
    "docker-odoo-outside-connections-tls": CONTAINER,
    "docker-odoo-sso-ldap-tls": CONTAINER,
    "aws-security-group-no-public-admin-ingress": "aws:ec2/securityGroup:SecurityGroup",
    "aws-rds-instance-not-public": "aws:rds/instance:Instance",
    "aws-rds-storage-encrypted": "aws:rds/cluster:Cluster",
    "aws-iam-no-admin-managed-policy": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "server-user-data-no-plaintext-password": SERVER,
    "vault-pki-role-key-and-validity": "vault:pkiSecret/secretBackendRole:SecretBackendRole",
    "vault-auth-role-least-privilege": "vault:kubernetes/authBackendRole:AuthBackendRole",
    "aws-kms-key-policy-least-privilege": "aws:kms/keyPolicy:KeyPolicy",
}


def test_every_resource_policy_declares_what_it_judges():
    problems = []
    for policy in ALL_POLICIES:
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        judged = JUDGED.get(policy.name)
        if judged is None:
            problems.append(f"{policy.name}: not in JUDGED (add one type it judges)")
            continue
        reason = not_applicable_reason(policy, UNRELATED)
        if reason is None or not reason.startswith("judges only"):
            problems.append(f"{policy.name}: {UNRELATED} is not answered 'not applicable' (got {reason!r})")
        judged, props = judged if isinstance(judged, tuple) else (judged, {})
        try:
            reason = not_applicable_reason(policy, judged, props)
        except CannotCheck:  # judged: an advisory saying what it could not see
            reason = None
        if reason is not None:
            problems.append(f"{policy.name}: {judged}, a type it judges, is answered 'not applicable' ({reason})")
    assert not problems, "\n".join(problems)


# Stack policies that judge only stacks holding some types (``stack_policy(applies_to=...)``):
# policy name -> one such type.
STACK_JUDGED = {
    "hcloud-server-sshd-key-only": SERVER,
    "hcloud-server-fail2ban-jails": SERVER,
    "hcloud-server-unattended-upgrades": SERVER,
    "hcloud-server-backup-agent": SERVER,
    "hcloud-server-host-bundle": "aws:s3/bucketObjectv2:BucketObjectv2",
    "aws-ebs-storage-encrypted": "aws:ebs/volume:Volume",
    "hcloud-load-balancer-no-admin-service": "hcloud:index/loadBalancerService:LoadBalancerService",
    "aws-s3-bucket-key-owned": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
}


def test_stack_policies_with_types_answer_not_applicable_for_a_stack_without_them():
    stack_policies = {p.name: p for p in ALL_POLICIES if isinstance(p, StackValidationPolicy)}
    assert set(STACK_JUDGED) <= set(stack_policies)
    unrelated = [stack_resource(UNRELATED, {}, "pw")]
    for name, judged in STACK_JUDGED.items():
        reason = stack_not_applicable_reason(stack_policies[name], unrelated)
        assert reason and reason.startswith("judges only") and reason.endswith("the stack has none"), name
        assert stack_not_applicable_reason(stack_policies[name], [stack_resource(judged, {}, "x")]) is None, name
