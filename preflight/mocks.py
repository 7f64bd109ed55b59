"""What the mocked engine and providers answer: plausible ids, computed outputs and invoke results."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, Mocks

from . import SECRET_PLACEHOLDER
from .wire import digest


def placeholder(urn: str, prop: str, length: int = 0) -> str:
    text = f"{SECRET_PLACEHOLDER}-{prop}-{digest(urn, prop)[:12]}"
    # Programs may check a secret's length (e.g. a password policy); honour it.
    while len(text) < length:
        text += digest(text)[: length - len(text)]
    return text


def computed_outputs(type_: str, name: str, urn: str, inputs: dict[str, Any], region: str
                     ) -> tuple[str, dict[str, Any]]:
    """A plausible id and computed outputs for a resource of a well-known type.

    Deliberately small and generic: ids look like the provider's (numeric for
    hcloud, ARNs for aws), and the handful of computed fields programs commonly
    read (addresses, ARNs, PEMs) get believable values. Everything is derived
    from the URN, not from the order of registration, which varies from run to
    run when the SDK calls the monitor from its thread pool: the same program
    records the same values.
    """
    pkg = type_.split(":")[0]
    module = type_.split(":")[1].split("/")[0] if type_.count(":") >= 2 else ""
    kind = type_.rsplit(":", 1)[-1]
    n = int(digest(urn)[:8], 16)
    out: dict[str, Any] = {}
    rid = f"{name}-{digest(urn)[:8]}"

    if pkg == "hcloud":
        rid = str(10_000_000 + n % 90_000_000)
        if kind == "Server":
            out.update(
                ipv4Address=f"203.0.113.{n % 250 + 1}",
                ipv6Address=f"2001:db8:{n % 0x10000:x}::1",
                ipv6Network=f"2001:db8:{n % 0x10000:x}::/64",
                status="running",
            )
        elif kind == "Volume":
            out["linuxDevice"] = f"/dev/disk/by-id/scsi-0HC_Volume_{rid}"
        elif kind in ("PrimaryIp", "FloatingIp"):
            out["ipAddress"] = f"198.51.100.{n % 250 + 1}"
    elif pkg == "aws":
        account = "123456789012"
        if kind == "Bucket" and module == "s3":
            bucket = inputs.get("bucket") or f"{name}-{digest(urn)[:7]}"
            rid = bucket
            out.update(
                bucket=bucket,
                arn=f"arn:aws:s3:::{bucket}",
                bucketDomainName=f"{bucket}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com",
                region=inputs.get("region") or region,
            )
        elif module == "kms" and kind == "Key":
            rid = str(uuid.UUID(digest(urn)[:32]))
            out.update(keyId=rid, arn=f"arn:aws:kms:{region}:{account}:key/{rid}")
        elif module == "iam":
            rid = inputs.get("name") or rid
            if kind == "AccessKey":
                rid = "AKIA" + digest(urn)[:16].upper()
            else:
                out["arn"] = f"arn:aws:iam::{account}:{kind[0].lower() + kind[1:]}/{rid}"
                out["uniqueId"] = "AID" + digest(urn)[:17].upper()
        out.setdefault("arn", f"arn:aws:{module}:{region}:{account}:{kind.lower()}/{rid}")
    elif pkg == "random":
        length = int(inputs.get("length") or 16)
        if kind in ("RandomPassword", "RandomString"):
            out["result"] = placeholder(urn, "result", length)
            rid = "none"
        elif kind == "RandomId":
            hexv = digest(urn)[: 2 * int(inputs.get("byteLength") or 8)]
            out.update(hex=hexv, dec=str(int(hexv, 16)), b64Url=hexv, b64Std=hexv)
            rid = hexv
        elif kind == "RandomUuid":
            rid = out["result"] = str(uuid.UUID(digest(urn)[:32]))
        elif kind == "RandomInteger":
            out["result"] = int(inputs.get("min") or 0)
            rid = str(out["result"])
        elif kind == "RandomPet":
            rid = f"preflight-{digest(urn)[:6]}"
    elif pkg == "tls":
        if kind == "PrivateKey":
            algo = inputs.get("algorithm", "RSA")
            ssh_type = {"ED25519": "ssh-ed25519", "ECDSA": "ecdsa-sha2-nistp256"}.get(algo, "ssh-rsa")
            out.update(
                publicKeyPem="-----BEGIN PUBLIC KEY-----\nPREFLIGHT\n-----END PUBLIC KEY-----\n",
                publicKeyOpenssh=f"{ssh_type} AAAAPREFLIGHT{digest(urn)[:16]}\n",
                publicKeyFingerprintSha256="SHA256:" + digest(urn)[:43],
                publicKeyFingerprintMd5=":".join(digest(urn)[i : i + 2] for i in range(0, 32, 2)),
            )
            rid = digest(urn)[:40]
        elif kind in ("SelfSignedCert", "LocallySignedCert"):
            hours = int(inputs.get("validityPeriodHours") or 0)
            now = time.time()
            out.update(
                certPem="-----BEGIN CERTIFICATE-----\nPREFLIGHT\n-----END CERTIFICATE-----\n",
                validityStartTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                validityEndTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + hours * 3600)),
                readyForRenewal=False,
            )
            rid = str(int(digest(urn)[:16], 16))
        elif kind == "CertRequest":
            out["certRequestPem"] = ("-----BEGIN CERTIFICATE REQUEST-----\nPREFLIGHT\n"
                                     "-----END CERTIFICATE REQUEST-----\n")
    elif pkg == "docker":
        rid = digest(urn)
    return rid, out


_KNOWN_AT_PREVIEW = {
    # Outputs a provider fills in at plan time, so `pulumi preview` already knows them for a
    # resource being created: the auto-name and the region of a bucket.
    "aws:s3/bucket:Bucket": frozenset({"bucket", "region"}),
    "aws:s3/bucketV2:BucketV2": frozenset({"bucket", "region"}),
}


def known_at_preview(type_: str, key: str) -> bool:
    """Whether the computed output ``key`` of a resource of ``type_`` being created is known at preview."""
    known = _KNOWN_AT_PREVIEW.get(type_)
    return known is not None and key in known


@dataclass(frozen=True)
class Offline:
    """What a run answers in place of the cloud and the engine: picklable, handed to workers."""

    preview: bool = True
    """As `pulumi preview` of a stack being created; False: computed outputs get mock values."""
    invoke_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Invoke token -> result (``--invoke-answers``), over preflight's own answers."""
    invoke_answers_file: str = ""
    stack_outputs: dict[str, dict[str, Any]] | None = None
    """Referenced stack name -> its outputs (``--stack-outputs``); None: no file given."""
    stack_outputs_file: str = ""
    allow_unexpanded: frozenset[str] = frozenset()
    """Types of remote components accepted unexpanded (``--allow-unexpanded``)."""


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class NoOfflineAnswer(Exception):
    """A question a preview would put to the cloud or the engine that preflight cannot answer offline."""


class InvokeMocks(Mocks):
    """Answers provider function calls (invokes) and reads (``.get()``, stack references).

    An invoke is answered from ``--invoke-answers``, else from ``invokes.KNOWN``; one with no answer
    raises ``NoOfflineAnswer`` (kept in ``problem`` too: a program may catch and swallow it)."""

    def __init__(self, region: str, offline: Offline | None = None) -> None:
        self.region = region
        self.offline = offline or Offline()
        self.problem: str | None = None

    def fail(self, message: str) -> NoOfflineAnswer:
        if self.problem is None:
            self.problem = message
        return NoOfflineAnswer(message)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        from .invokes import KNOWN

        answer = self.offline.invoke_answers.get(args.token)
        if answer is not None:
            return dict(answer), []
        make = KNOWN.get(args.token)
        if make is None:
            where = (f"add it to {self.offline.invoke_answers_file}" if self.offline.invoke_answers_file
                     else "answer it with --invoke-answers FILE (YAML: the token, then the result's fields)")
            raise self.fail(f"invoke {args.token} has no offline answer: {where}")
        return make(dict(args.args), self.region), []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:  # only used for ReadResource (`.get()`)
        if args.typ == STACK_REFERENCE:
            return self._stack_reference(str(args.inputs.get("name") or args.resource_id))
        return f"{args.name}-id", dict(args.inputs)

    def _stack_reference(self, stack: str) -> tuple[str, dict[str, Any]]:
        known = self.offline.stack_outputs
        if known is None:
            raise self.fail(f"StackReference {stack!r}: its outputs are not known offline: "
                             "give them with --stack-outputs FILE (YAML: stack name, then its outputs)")
        if stack not in known:
            raise self.fail(f"StackReference {stack!r}: no such stack in {self.offline.stack_outputs_file}")
        outputs = known[stack] or {}
        secret = sorted(k for k, v in outputs.items() if isinstance(v, dict) and set(v) == {"secret"})
        plain = {k: (v["secret"] if k in secret else v) for k, v in outputs.items()}
        return stack, {"name": stack, "outputs": plain, "secretOutputNames": secret}

    def missing_output(self, stack: str, name: str) -> NoOfflineAnswer:
        return self.fail(f"StackReference {stack!r}: output {name!r} is not in "
                          f"{self.offline.stack_outputs_file or '--stack-outputs'}")
