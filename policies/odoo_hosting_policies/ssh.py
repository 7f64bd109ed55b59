"""ACC-01: a server is created with SSH keys and its sshd is key-only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity
from pulumi_policy.proxy import UnknownValueError

from ._meta import get, resource_policy, stack_policy
from .cloudconfig import sshd_findings
from .hostbundle import HostFileCheck

SERVER = "hcloud:index/server:Server"


def _known_items(seq: Sequence[Any]) -> list[Any]:
    """The known elements of a list; an unknown element (an ID not yet created) counts as set."""
    out = []
    for i in range(len(seq)):
        try:
            out.append(seq[i])
        except UnknownValueError:  # present; its value is decided at deploy time
            out.append(True)
    return out


def _validate_ssh_keys(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    keys = get(args.props, "sshKeys", [])
    if not isinstance(keys, Sequence) or isinstance(keys, str) or len(keys) == 0:
        report_violation(
            "the server has no sshKeys, so Hetzner e-mails a root password and password login is the only way "
            "in; set sshKeys to the operators' hcloud SSH keys.", None)
        return
    if any(k in ("", None) for k in _known_items(keys)):
        report_violation("sshKeys contains an empty entry; list only existing SSH key IDs or names.", None)


hcloud_server_ssh_keys = resource_policy(
    name="hcloud-server-ssh-keys-required",
    description="Checks that every Hetzner server is created with at least one SSH key.",
    controls=["ACC-01"],
    severity=Severity.HIGH,
    remediation="Create hcloud.SshKey resources for the operators and pass their IDs in the server's sshKeys.",
    validate=_validate_ssh_keys,
    applies_to=(SERVER,),
)


SSHD = HostFileCheck(
    judge=sshd_findings,
    what="sshd",
    no_user_data="the server has no userData, so sshd keeps the image defaults (password authentication on); "
                 "set userData to a #cloud-config that installs a key-only sshd drop-in and ssh_pwauth: false.",
    unreadable="this mandatory check cannot pass on what it cannot read. Pass a #cloud-config as userData "
               "(sshd settings in write_files or its host bundle, ssh_pwauth: false).",
    finding="{source} leaves sshd not key-only: {finding}. Fix it in the cloud-config or its bundle (an early "
            "/etc/ssh/sshd_config.d/ drop-in wins: sshd takes the first value it reads).",
)


hcloud_server_sshd_key_only = stack_policy(
    name="hcloud-server-sshd-key-only",
    description="Checks that a Hetzner server's cloud-config user-data (with the host bundle it pins) "
                "yields an effective sshd configuration that is key-only (no passwords, no "
                "keyboard-interactive, no root, MaxAuthTries <= 3, no weak algorithms).",
    controls=["ACC-01"],
    severity=Severity.CRITICAL,
    remediation="In the server's #cloud-config set ssh_pwauth: false and write (there or in its host bundle) "
                "a drop-in that sorts before 50-cloud-init.conf (e.g. /etc/ssh/sshd_config.d/10-hardening.conf) with "
                "PasswordAuthentication no, KbdInteractiveAuthentication no, PermitRootLogin no, "
                "AuthenticationMethods publickey and MaxAuthTries 3; keep Match blocks from loosening them.",
    validate=SSHD.validate,
    applies_to=(SERVER,),
)
