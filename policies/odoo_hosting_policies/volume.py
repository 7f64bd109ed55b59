"""DSK-01 and REL-01: the client's data volume is encrypted on the host and kept."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from ._meta import get, in_client, is_true, resource_policy

VOLUME = "hcloud:index/volume:Volume"
VOLUME_ATTACHMENT = "hcloud:index/volumeAttachment:VolumeAttachment"
SERVER = "hcloud:index/server:Server"


def _validate_no_provider_format(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == VOLUME:
        fmt = get(args.props, "format")
        if fmt is not None and str(fmt).strip():
            report_violation(
                f"format is '{fmt}', so Hetzner puts a plain filesystem on the volume instead of LUKS; "
                "remove format (the host sets up LUKS2 on the raw device).", None)
    if is_true(get(args.props, "automount")):
        report_violation(
            "automount is true, so Hetzner mounts the raw volume before LUKS is opened; set automount "
            "to false (the host opens and mounts the LUKS device itself).", None)


hcloud_volume_no_provider_format = resource_policy(
    name="hcloud-volume-no-provider-format",
    description="Checks that Hetzner volumes and volume attachments are neither formatted nor "
                "automounted by the provider (the host encrypts them with LUKS2).",
    controls=["DSK-01"],
    severity=Severity.HIGH,
    remediation="Remove format and set automount: false on hcloud.Volume and hcloud.VolumeAttachment; "
                "the host's cloud-config formats the device with LUKS2 and mounts it.",
    validate=_validate_no_provider_format,
    applies_to=(VOLUME, VOLUME_ATTACHMENT),
)


def _validate_volume_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    hetzner = is_true(get(args.props, "deleteProtection"))
    pulumi = args.opts is not None and bool(args.opts.protect)
    client = in_client(args)
    if (client or not pulumi) and not hetzner:
        report_violation(
            "Hetzner deleteProtection (the provider's API-side lock) is not true, so the volume can be "
            "deleted through the Hetzner API or console"
            + ("" if client else ", and the Pulumi protect option is not set either")
            + "; set delete_protection=True on the hcloud.Volume.", None)
    if (client or not hetzner) and not pulumi:
        report_violation(
            "the Pulumi protect option (ResourceOptions(protect=True), checked by Pulumi before any delete) "
            "is not set, so a pulumi destroy or a replacement deletes the "
            + ("client's data" if client else "data on the volume")
            + "; Hetzner deleteProtection alone does not stop Pulumi from replacing it. Set "
              "opts=ResourceOptions(protect=True) on the volume.", None)


hcloud_volume_protected = resource_policy(
    name="hcloud-volume-delete-protected",
    description="Checks that Hetzner volumes are kept from deletion: in any program by Hetzner delete "
                "protection or the Pulumi protect option, in a client stack by both.",
    controls=["REL-01"],
    severity=Severity.HIGH,
    remediation="Set delete_protection=True on the hcloud.Volume and opts=ResourceOptions(protect=True).",
    validate=_validate_volume_protection,
    applies_to=(VOLUME,),
    scope="mixed",
)


def _validate_server_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    delete = is_true(get(args.props, "deleteProtection"))
    rebuild = is_true(get(args.props, "rebuildProtection"))
    if delete != rebuild:
        report_violation(
            f"deleteProtection is {str(delete).lower()} but rebuildProtection is {str(rebuild).lower()}; "
            "Hetzner requires them equal, so set both to the same value.", None)


hcloud_server_protection_consistent = resource_policy(
    name="hcloud-server-protection-consistent",
    description="Checks that a Hetzner server's delete and rebuild protection are set together.",
    controls=["REL-01"],
    severity=Severity.LOW,
    remediation="Set delete_protection and rebuild_protection on the hcloud.Server to the same value.",
    validate=_validate_server_protection,
    applies_to=(SERVER,),
)
