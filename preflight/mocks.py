"""What the mocked engine and providers answer: plausible ids, computed outputs and invoke results."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, Mocks

from . import SECRET_PLACEHOLDER


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


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


_INVOKE_RESULTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda region: {
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/preflight",
        "userId": "AIDAPREFLIGHT",
        "id": "123456789012",
    },
    "aws:index/getRegion:getRegion": lambda region: {"name": region, "region": region, "id": region},
    "aws:index/getPartition:getPartition": lambda region: {"partition": "aws", "dnsSuffix": "amazonaws.com",
                                                           "id": "aws"},
}


class InvokeMocks(Mocks):
    """Answers provider function calls (invokes): empty unless well known."""

    def __init__(self, region: str) -> None:
        self.region = region

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        make = _INVOKE_RESULTS.get(args.token)
        return (make(self.region) if make else {}), []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:  # only used for ReadResource (`.get()`)
        return f"{args.name}-id", dict(args.inputs)

