"""Baseline data at rest and database exposure on AWS: RDS and EBS (DSK-01, ACC-02).

- An RDS instance is not ``publiclyAccessible`` (ACC-02: a database port on
  the internet) and has ``storageEncrypted`` (DSK-01); an RDS cluster has
  ``storageEncrypted``.
- EBS volumes are encrypted (DSK-01): ``ebs.Volume.encrypted``, an EC2
  instance's ``rootBlockDevice`` and ``ebsBlockDevices``, a launch template's
  ``blockDeviceMappings[].ebs``. Account-wide ``ebs.EncryptionByDefault``
  (enabled) in the same stack counts for all of them, so this is a stack
  policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from ._meta import as_list, cannot_check, get, is_true, resource_policy, stack_policy

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
EBS_VOLUME = "aws:ebs/volume:Volume"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EBS_DEFAULT = "aws:ebs/encryptionByDefault:EncryptionByDefault"


def rds_public_problems(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == RDS_INSTANCE and is_true(get(props, "publiclyAccessible")):
        return ["publiclyAccessible is true, so the database port gets a public address; set "
                "publicly_accessible=False and reach it from inside the VPC"]
    return []


def rds_encryption_problems(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not is_true(get(props, "storageEncrypted")):
        return ["storageEncrypted is not true, so the database's storage, snapshots and replicas are "
                "unencrypted; set storage_encrypted=True (with kms_key_id for a key of your own)"]
    return []


def _validate_rds_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in rds_public_problems(args.resource_type, args.props):
        report_violation(f"{problem}.", None)


def _validate_rds_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in rds_encryption_problems(args.resource_type, args.props):
        report_violation(f"{problem}.", None)


aws_rds_not_public = resource_policy(
    name="aws-rds-instance-not-public",
    description="Checks that RDS instances are not publicly accessible.",
    controls=["ACC-02"],
    severity=Severity.CRITICAL,
    remediation="Create aws.rds.Instance with publicly_accessible=False.",
    validate=_validate_rds_public,
    applies_to=(RDS_INSTANCE,),
)

aws_rds_encrypted = resource_policy(
    name="aws-rds-storage-encrypted",
    description="Checks that RDS instances and clusters encrypt their storage.",
    controls=["DSK-01"],
    severity=Severity.HIGH,
    remediation="Create aws.rds.Instance / aws.rds.Cluster with storage_encrypted=True.",
    validate=_validate_rds_encrypted,
    applies_to=(RDS_INSTANCE, RDS_CLUSTER),
)


def _unencrypted(block: Any) -> bool:
    return isinstance(block, Mapping) and not is_true(get(block, "encrypted"))


def ebs_problems(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Unencrypted EBS storage a resource creates (a block it leaves unset is unencrypted)."""
    if resource_type == EBS_VOLUME:
        return [] if is_true(get(props, "encrypted")) else ["encrypted is not true"]
    problems = []
    if resource_type == EC2_INSTANCE:
        root = get(props, "rootBlockDevice")
        if root is None or _unencrypted(root):
            problems.append("rootBlockDevice.encrypted is not true (the root volume is unencrypted)")
        for i, block in enumerate(as_list(get(props, "ebsBlockDevices"))):
            if _unencrypted(block):
                problems.append(f"ebsBlockDevices[{i}].encrypted is not true")
    elif resource_type == LAUNCH_TEMPLATE:
        for i, mapping in enumerate(as_list(get(props, "blockDeviceMappings"))):
            ebs = get(mapping, "ebs") if isinstance(mapping, Mapping) else None
            if _unencrypted(ebs):
                problems.append(f"blockDeviceMappings[{i}].ebs.encrypted is not true")
    return problems


def _encrypted_by_default(resources: list[Any]) -> bool:
    for r in resources:
        if r.resource_type != EBS_DEFAULT:
            continue
        try:
            if get(r.props, "enabled", True) is not False:
                return True
        except UnknownValueError:
            continue
    return False


def _validate_ebs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if _encrypted_by_default(args.resources):
        return
    unknown = []
    for resource in args.resources:
        if resource.resource_type not in (EBS_VOLUME, EC2_INSTANCE, LAUNCH_TEMPLATE):
            continue
        try:
            problems = ebs_problems(resource.resource_type, resource.props)
        except UnknownValueError:
            unknown.append(resource.name)
            continue
        if problems:
            report_violation(f"'{resource.name}': {'; '.join(problems)}; set encrypted=True on its EBS storage (or "
                             "enable aws.ebs.EncryptionByDefault in this stack).", resource.urn)
    if unknown:
        cannot_check(f"the EBS encryption of {', '.join(sorted(unknown))}: a value is unknown at preview "
                     "(set encrypted to a literal true)")


aws_ebs_encrypted = stack_policy(
    name="aws-ebs-storage-encrypted",
    description="Checks that EBS storage is encrypted: ebs.Volume, an EC2 instance's root and EBS block "
                "devices and launch template block devices (or ebs.EncryptionByDefault in the stack).",
    controls=["DSK-01"],
    severity=Severity.HIGH,
    remediation="Set encrypted=True on aws.ebs.Volume, root_block_device and ebs_block_devices (or create "
                "aws.ebs.EncryptionByDefault(enabled=True) in the account's stack).",
    validate=_validate_ebs,
    applies_to=(EBS_VOLUME, EC2_INSTANCE, LAUNCH_TEMPLATE),
)
