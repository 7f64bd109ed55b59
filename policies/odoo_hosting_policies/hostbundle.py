"""The host's files wherever they live: user-data, or user-data and the host bundle it pins.

The host-file policies (sshd, fail2ban, unattended-upgrades, the backup
agent) are stack policies: a server's bundle is another resource of the
stack (an S3 bucket object), found by the SHA-256 its user-data pins. Each
judges the effective cloud-config :func:`.cloudconfig.host_cloud_config`
gives (parsed and merged once per stack, however many policies ask) through
:func:`judge_host_files`, and reports on the server's URN.

``hcloud-server-host-bundle`` fails closed on the bundle itself: a pin the
stack does not resolve (no object with that content, content unknown at
preview, not a string), a bundle that is not a readable
``#odoo-hosting-bundle v1`` document, an object the pinned URL does not
name, and a bundle that holds a secret (the bundle is a plain, readable
object: no secret belongs in it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import ReportViolation, Severity, StackValidationArgs

from ._meta import stack_policy
from ._servicer import secret_inputs
from .cloudconfig import (
    BUNDLE_HEADER,
    BUNDLE_OBJECT_TYPES,
    HostCloudConfig,
    bundle_objects,
    find_bundle,
    host_cloud_config,
    safe_input,
)

SERVER = "hcloud:index/server:Server"
PREFLIGHT_SECRET = "PREFLIGHT-SECRET"
"""What preflight puts where a secret value would be (its SECRET_PLACEHOLDER): a bundle that holds
one was built from a secret."""
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
BUNDLE_FIX = ("store the bundle the program rendered with the host (components.hostconfig.render_host(...)"
              ".bundle) as the content of an aws.s3.BucketObjectv2 in this stack, at the key the pinned url names")


def servers(args: StackValidationArgs) -> list[Any]:
    return [r for r in args.resources if r.resource_type == SERVER]


def _no_params(args: StackValidationArgs) -> tuple[Any, ...]:
    return ()


@dataclass(frozen=True)
class HostFileCheck:
    """One host-file policy: its judge and how it words its messages. ``validate`` is the policy's."""

    judge: Callable[..., Sequence[str]]
    """``judge(cfg, *params)``: the findings for one effective cloud-config (NotJudgeable when unreadable)."""
    what: str
    """What it judges, for "... so <what> cannot be checked" ("sshd", "the backup agent")."""
    no_user_data: str
    """The whole message for a server without userData."""
    unreadable: str
    """Said after why the files cannot be read."""
    finding: str
    """A finding's message: ``{source}`` (userData, or userData with its bundle) and ``{finding}``."""
    params: Callable[[StackValidationArgs], tuple[Any, ...]] = _no_params
    """The judge's further arguments, from the policy config."""

    def validate(self, args: StackValidationArgs, report_violation: ReportViolation) -> None:
        judge_host_files(args, report_violation, self)


def judge_host_files(args: StackValidationArgs, report_violation: ReportViolation, check: HostFileCheck) -> None:
    """Report the check's findings for each server's effective cloud-config, on its URN; a server
    whose files cannot be read is reported too, never passed."""
    params = check.params(args)
    for server in servers(args):
        host = host_cloud_config(server.props, args.resources)
        if host.missing:
            report_violation(check.no_user_data, server.urn)
            continue
        if host.bundle_problem:
            report_violation(f"{host.bundle_problem}, so {check.what} cannot be checked; {BUNDLE_FIX} "
                             "(see hcloud-server-host-bundle).", server.urn)
            continue
        findings, not_judgeable = host.judge(check.judge, *params)
        if not_judgeable:
            report_violation(f"{not_judgeable}; {check.unreadable}", server.urn)
        for finding in findings:
            report_violation(check.finding.format(source=host.source, finding=finding), server.urn)


# --- hcloud-server-host-bundle -------------------------------------------------------

def _fetched_from(url: str, bucket: Any, key: Any) -> bool:
    """Whether ``url`` (path-style or virtual-hosted S3) names ``bucket``/``key``; an input
    unknown at preview is not held against it."""
    parts = urlsplit(url)
    if not isinstance(key, str):
        return True
    if not isinstance(bucket, str):
        return parts.path.endswith("/" + key)
    return parts.path == f"/{bucket}/{key}" or (parts.netloc.startswith(bucket + ".") and parts.path == "/" + key)


def _secret_problems(obj: Any) -> list[str]:
    if "content" in secret_inputs(obj):
        return ["its content is marked secret by the engine"]
    content = safe_input(obj, "content")
    if not isinstance(content, str):
        return []
    problems = []
    if _PEM_PRIVATE_KEY.search(content):
        problems.append("it contains a PEM private key block")
    if PREFLIGHT_SECRET in content:
        problems.append("it contains a secret value (preflight's placeholder for one)")
    return problems


def _is_bundle(obj: Any) -> bool:
    content = safe_input(obj, "content")
    key = safe_input(obj, "key")
    return ((isinstance(content, str) and content.startswith(BUNDLE_HEADER))
            or (isinstance(key, str) and key.startswith("host-bundle/")))


def _validate_host_bundle(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    pinned = []
    for server in servers(args):
        host: HostCloudConfig = host_cloud_config(server.props, args.resources)
        if host.bundle_problem:
            report_violation(f"{host.bundle_problem}; the host would boot without its sshd, firewall, fail2ban, "
                             f"update and backup files. Fix: {BUNDLE_FIX}.", server.urn)
            continue
        if host.pin is None:  # no pin (or no readable user-data: the host-file policies say so)
            continue
        found = find_bundle(host.pin, args.resources)
        pinned.append(found.resource)
        bucket, key = safe_input(found.resource, "bucket"), safe_input(found.resource, "key")
        if not _fetched_from(host.pin.url, bucket, key):
            report_violation(f"userData pins {host.pin}, but the object with that content, "
                             f"'{found.resource.name}', is stored at bucket {bucket} key {key}, so the host "
                             f"would not find it; {BUNDLE_FIX}.", server.urn)
    for obj in bundle_objects(args.resources):
        if not (any(obj is p for p in pinned) or _is_bundle(obj)):
            continue
        for problem in _secret_problems(obj):
            report_violation(f"host bundle object '{obj.name}' holds a secret: {problem}. The bundle is a plain "
                             "object anyone with the bucket credential can read; keep secrets in Vault and have "
                             "the host fetch them at run time (odoo-hosting-secret).", obj.urn)


hcloud_server_host_bundle = stack_policy(
    name="hcloud-server-host-bundle",
    description="Checks that every host bundle a Hetzner server's user-data pins (boot.json sha256 and url) "
                "is in the stack as an S3 bucket object with exactly that content, at the key the url names, "
                "is a readable #odoo-hosting-bundle v1 document, and holds no secret.",
    controls=["ACC-01", "ACC-02", "ACC-04", "SWU-01", "BKP-01"],
    severity=Severity.CRITICAL,
    remediation="Render user-data and bundle together (components.hostconfig.render_host) and store the bundle "
                "as aws.s3.BucketObjectv2(bucket=<the backup bucket>, key=host-bundle/<sha256>.yaml, "
                "content=<bundle>) in the same stack; keep secrets out of it (Vault, fetched at run time).",
    validate=_validate_host_bundle,
    applies_to=(SERVER, *sorted(BUNDLE_OBJECT_TYPES)),
    scope="client",
)

