"""Answers to provider functions (invokes) offline: pure data sources computed as the provider
computes them, realistic defaults for the common lookups of cloud state, and nothing else.

An invoke preflight has no answer for is an error naming its token and ``--invoke-answers``
(``mocks.InvokeMocks``): an empty result would let a program run on with made-up ``None``s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .wire import digest

ACCOUNT = "123456789012"

Answer = Callable[[dict[str, Any], str], dict[str, Any]]
"""(invoke arguments, region) -> result, in the provider's wire names."""


# -- aws:iam/getPolicyDocument: computed locally by the provider ------------------------------


def _one_or_list(values: list[str]) -> str | list[str]:
    """The provider writes a single value as a string, several as a list."""
    return values[0] if len(values) == 1 else values


def _string_set(values: Any) -> str | list[str]:
    # The provider keeps actions and resources in a set and writes it in reverse sorted order.
    items = sorted({str(v) for v in values or []}, reverse=True)
    return _one_or_list(items)


def _principals(principals: list[dict[str, Any]]) -> Any:
    by_type: dict[str, list[str]] = {}
    for p in principals:
        by_type.setdefault(str(p.get("type", "")), []).extend(str(i) for i in p.get("identifiers") or [])
    if set(by_type) == {"*"} and set(by_type["*"]) <= {"*"}:
        return "*"
    return {t: _string_set(ids) for t, ids in sorted(by_type.items())}


def _conditions(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for c in conditions:
        test = out.setdefault(str(c.get("test", "")), {})
        values = [str(v) for v in c.get("values") or []]
        test[str(c.get("variable", ""))] = _one_or_list(values)
    return out


def _statement(s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.get("sid"):
        out["Sid"] = s["sid"]
    out["Effect"] = s.get("effect") or "Allow"
    for key, wire in (("Action", "actions"), ("NotAction", "notActions"), ("Resource", "resources"),
                      ("NotResource", "notResources")):
        if s.get(wire):
            out[key] = _string_set(s[wire])
    for key, wire in (("Principal", "principals"), ("NotPrincipal", "notPrincipals")):
        if s.get(wire):
            out[key] = _principals(s[wire])
    if s.get("conditions"):
        out["Condition"] = _conditions(s["conditions"])
    return out


def _merge(statements: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements of ``more`` replace those of ``statements`` with the same Sid; the rest are appended."""
    out = list(statements)
    for s in more:
        sid = s.get("Sid")
        same = [i for i, t in enumerate(out) if sid and t.get("Sid") == sid]
        if same:
            out[same[0]] = s
        else:
            out.append(s)
    return out


def policy_document(args: dict[str, Any], _region: str) -> dict[str, Any]:
    """``aws.iam.get_policy_document``: the JSON the provider renders, without calling AWS."""
    statements: list[dict[str, Any]] = []
    for source in args.get("sourcePolicyDocuments") or []:
        statements = _merge(statements, json.loads(source).get("Statement", []))
    statements = _merge(statements, [_statement(s) for s in args.get("statements") or []])
    for override in args.get("overridePolicyDocuments") or []:
        statements = _merge(statements, json.loads(override).get("Statement", []))
    doc: dict[str, Any] = {"Version": args.get("version") or "2012-10-17"}
    if args.get("policyId"):
        doc["Id"] = args["policyId"]
    doc["Statement"] = statements
    text = json.dumps(doc, indent=2)
    minified = json.dumps(doc, separators=(",", ":"))
    return {**args, "json": text, "minifiedJson": minified, "id": str(int(digest(minified)[:8], 16))}


# -- realistic defaults for lookups of cloud state ---------------------------------------------


def _azs(args: dict[str, Any], region: str) -> dict[str, Any]:
    names = [f"{region}{z}" for z in "abc"]
    return {"names": names, "zoneIds": [f"{region[:3]}{region.split('-')[-1]}-az{i}" for i in (1, 2, 3)],
            "groupNames": [region] * 3, "state": args.get("state") or "available", "id": region}


def _ami(args: dict[str, Any], region: str) -> dict[str, Any]:
    key = json.dumps(args, sort_keys=True)
    ami = "ami-0" + digest(region, key)[:16]
    name = next((str(v) for f in args.get("filters") or [] if f.get("name") == "name"
                 for v in f.get("values") or []), "preflight-image")
    return {"id": ami, "imageId": ami, "name": name.replace("*", "20250101"), "architecture": "x86_64",
            "arn": f"arn:aws:ec2:{region}::image/{ami}", "ownerId": (args.get("owners") or [ACCOUNT])[0],
            "rootDeviceName": "/dev/xvda", "state": "available", "virtualizationType": "hvm",
            "mostRecent": bool(args.get("mostRecent")), "owners": args.get("owners") or []}


def _hcloud_id(*parts: str) -> int:
    return 10_000_000 + int(digest(*parts)[:8], 16) % 90_000_000


def _image(args: dict[str, Any], _region: str) -> dict[str, Any]:
    name = str(args.get("name") or args.get("withSelector") or "debian-12")
    return {"id": args.get("id") or _hcloud_id("image", name), "name": name, "type": "system",
            "osFlavor": name.split("-")[0], "osVersion": name.split("-")[-1],
            "architecture": args.get("withArchitecture") or "x86", "status": "available"}


def _location(args: dict[str, Any], _region: str) -> dict[str, Any]:
    name = str(args.get("name") or "fsn1")
    return {"id": args.get("id") or _hcloud_id("location", name), "name": name, "networkZone": "eu-central",
            "country": "DE", "city": "Falkenstein", "description": f"Falkenstein DC Park 1 ({name})",
            "latitude": 50.47612, "longitude": 12.370071}


def _server_type(args: dict[str, Any], _region: str) -> dict[str, Any]:
    name = str(args.get("name") or "cx22")
    return {"id": args.get("id") or _hcloud_id("server_type", name), "name": name, "cores": 2, "memory": 4,
            "disk": 40, "architecture": "x86", "cpuType": "shared", "storageType": "local",
            "description": name.upper(), "includedTraffic": 21990232555520}


def _ssh_key(args: dict[str, Any], _region: str) -> dict[str, Any]:
    name = str(args.get("name") or args.get("fingerprint") or args.get("withSelector") or "preflight")
    fingerprint = ":".join(digest("ssh", name)[i : i + 2] for i in range(0, 32, 2))
    return {"id": args.get("id") or _hcloud_id("ssh_key", name), "name": name,
            "fingerprint": args.get("fingerprint") or fingerprint,
            "publicKey": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{digest('ssh', name)[:43]} {name}",
            "labels": {}}


KNOWN: dict[str, Answer] = {
    "aws:iam/getPolicyDocument:getPolicyDocument": policy_document,
    "aws:index/getCallerIdentity:getCallerIdentity": lambda _a, _r: {
        "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/preflight", "userId": "AIDAPREFLIGHT",
        "id": ACCOUNT},
    "aws:index/getRegion:getRegion": lambda a, r: {"name": a.get("name") or r, "region": a.get("region") or r,
                                                   "id": r, "endpoint": f"ec2.{r}.amazonaws.com",
                                                   "description": r},
    "aws:index/getPartition:getPartition": lambda _a, _r: {"partition": "aws", "dnsSuffix": "amazonaws.com",
                                                           "reverseDnsPrefix": "com.amazonaws", "id": "aws"},
    "aws:index/getAvailabilityZones:getAvailabilityZones": _azs,
    "aws:ec2/getAmi:getAmi": _ami,
    "hcloud:index/getImage:getImage": _image,
    "hcloud:index/getLocation:getLocation": _location,
    "hcloud:index/getServerType:getServerType": _server_type,
    "hcloud:index/getSshKey:getSshKey": _ssh_key,
}
"""Invokes answered without an answers file, by token."""
