"""SEC-02 and SEC-03: Vault policies stay inside one client's path; break-glass and audit exist.

:func:`parse_policy` reads a Vault policy in HCL or JSON into (path,
capabilities) rules. It is a reader for the policy language's ``path``
blocks, not a full HCL parser: text it cannot read is reported, never passed.

A glob is allowed only as a whole last segment ``/*`` (or a ``+`` segment)
at least ``minimumGlobDepth`` segments deep (``<mount>/data/<client>/*``):
``secret/*``, ``odoo-hosting/data/*`` and ``odoo-hosting/data/acme*`` all
reach other clients. ``sudo`` and ``sys/*`` are refused, with one narrow,
explicit exception: ``sys/seal`` (which Vault guards with ``sudo``) in a
policy whose name contains ``break-glass``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from ._meta import as_list, as_number, config_int, get, in_client, resource_policy, shown, stack_policy

POLICY = "vault:index/policy:Policy"
AUDIT = "vault:index/audit:Audit"
APPROLE_ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
ORGANISATION_TYPES = (AUDIT, "vault:index/mount:Mount", "vault:index/authBackend:AuthBackend",
                      "vault:index/auditRequestHeader:AuditRequestHeader")
"""Server-wide Vault resources: a stack that manages any of them owns the Vault installation."""

SEAL_PATH = "sys/seal"
SEAL_CAPABILITIES = frozenset({"update", "sudo"})
_BREAK_GLASS = re.compile(r"break[-_ ]?glass", re.IGNORECASE)
DEFAULT_MIN_GLOB_DEPTH = 3
DEFAULT_MAX_TOKEN_TTL = 3600


class UnreadablePolicy(Exception):
    """The policy text cannot be read; the message says why."""


@dataclass(frozen=True)
class Rule:
    path: str
    capabilities: tuple[str, ...]


_COMMENTS = re.compile(r'"(?:\\.|[^"\\])*"|/\*.*?\*/|#[^\n]*|//[^\n]*', re.DOTALL)
_PATH_HEAD = re.compile(r'\bpath\s*"((?:\\.|[^"\\])*)"\s*=?\s*\{')
_CAPS = re.compile(r'\bcapabilities\s*=\s*\[([^\]]*)\]')
_LEGACY = re.compile(r'\bpolicy\s*=\s*"([^"]*)"')
_LEGACY_CAPS = {"deny": ("deny",), "read": ("read", "list"), "write": ("create", "read", "update", "delete", "list"),
                "sudo": ("create", "read", "update", "delete", "list", "sudo")}


def _strip_comments(text: str) -> str:
    return _COMMENTS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)


def _block_end(text: str, start: int) -> int:
    """Index after the '}' closing the block whose '{' is at ``start - 1``."""
    depth, i, in_string = 1, start, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise UnreadablePolicy("a path block is not closed")


def _caps_of(body: str) -> tuple[str, ...]:
    caps: list[str] = []
    for m in _CAPS.finditer(body):
        caps += [c.strip().strip('"').strip().lower() for c in m.group(1).split(",") if c.strip()]
    for m in _LEGACY.finditer(body):
        caps += list(_LEGACY_CAPS.get(m.group(1).strip().lower(), (m.group(1).strip().lower(),)))
    return tuple(caps)


def _parse_json(text: str) -> list[Rule]:
    try:
        data = json.loads(text)
    except ValueError:
        raise UnreadablePolicy("the policy is neither valid HCL path blocks nor valid JSON") from None
    paths = data.get("path") if isinstance(data, dict) else None
    blocks = paths if isinstance(paths, list) else [paths] if isinstance(paths, dict) else None
    if blocks is None:
        raise UnreadablePolicy("the JSON policy has no 'path' object")
    rules = []
    for block in blocks:
        if not isinstance(block, dict):
            raise UnreadablePolicy("a JSON 'path' entry is not an object")
        for path, body in block.items():
            body = body[0] if isinstance(body, list) and body else body
            if not isinstance(body, dict):
                raise UnreadablePolicy(f"the rules of path '{path}' are not an object")
            caps = [str(c).lower() for c in as_list(body.get("capabilities"))]
            legacy = body.get("policy")
            if isinstance(legacy, str):
                caps += list(_LEGACY_CAPS.get(legacy.lower(), (legacy.lower(),)))
            rules.append(Rule(str(path), tuple(caps)))
    return rules


def parse_policy(text: str) -> list[Rule]:
    if not isinstance(text, str):
        raise UnreadablePolicy("the policy is not a string")
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    clean = _strip_comments(text)
    rules, pos = [], 0
    leftovers = []
    while True:
        m = _PATH_HEAD.search(clean, pos)
        if m is None:
            leftovers.append(clean[pos:])
            break
        leftovers.append(clean[pos:m.start()])
        end = _block_end(clean, m.end())
        rules.append(Rule(m.group(1), _caps_of(clean[m.end():end - 1])))
        pos = end
    if "".join(leftovers).strip():
        raise UnreadablePolicy("the policy has text outside path blocks that this check cannot read")
    return rules


def is_break_glass(name: str | None) -> bool:
    return isinstance(name, str) and bool(_BREAK_GLASS.search(name))


def _glob_problem(path: str, min_depth: int) -> str | None:
    segments = path.strip().lstrip("/").split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if "*" in seg:
            if seg != "*" or not last:
                return f"path '{path}' has a glob inside a name ('{seg}'), which matches other clients' paths too"
            if i < min_depth:
                return (f"path '{path}' ends in a glob only {i} segment(s) deep, which reaches other clients' "
                        f"paths; globs are allowed from depth {min_depth} (<mount>/data/<client>/*)")
        elif seg == "+" and i < min_depth:
            return f"path '{path}' has a '+' wildcard at segment {i + 1}, which reaches other clients' paths"
        elif "+" in seg and seg != "+":
            return f"path '{path}' has a '+' inside a name ('{seg}')"
    return None


def rule_problems(rules: list[Rule], policy_name: str | None, min_depth: int) -> list[str]:
    problems = []
    break_glass = is_break_glass(policy_name)
    for rule in rules:
        path = rule.path.strip().lstrip("/")
        seal_exception = break_glass and path == SEAL_PATH
        if path.split("/", 1)[0] == "sys" and not seal_exception:
            problems.append(f"path '{rule.path}' grants access to sys/ (Vault's own configuration); remove it "
                            "(only a break-glass policy may grant exactly sys/seal)")
        elif "sudo" in rule.capabilities and not seal_exception:
            problems.append(f"path '{rule.path}' grants sudo; remove the sudo capability")
        if "deny" in rule.capabilities and len(rule.capabilities) == 1:
            continue
        glob = _glob_problem(rule.path, min_depth)
        if glob:
            problems.append(glob)
    return problems


_POLICY_CONFIG = {
    "minimumGlobDepth": {
        "type": "integer", "minimum": 1, "default": DEFAULT_MIN_GLOB_DEPTH,
        "description": "Segments a Vault path must have before a trailing /* or a + wildcard "
                       "(3 = <mount>/data/<client>/*).",
    },
}


def _validate_vault_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    min_depth = config_int(args, "minimumGlobDepth", DEFAULT_MIN_GLOB_DEPTH, minimum=1)
    name = get(args.props, "name", args.name)
    try:
        rules = parse_policy(get(args.props, "policy", ""))
    except UnreadablePolicy as e:
        report_violation(f"Vault policy: {e}, so it cannot be checked; write it as HCL path blocks "
                         "(path \"...\" {{ capabilities = [...] }}) or JSON.", None)
        return
    client = in_client(args)
    for problem in rule_problems(rules, name, min_depth):
        if not client:  # any program: the paths of other teams or tenants, not "clients"
            problem = problem.replace("other clients' paths", "paths beyond the policy's own").replace(
                "<mount>/data/<client>/*", "<mount>/data/<name>/*")
        report_violation(f"Vault policy: {problem}.", None)


vault_policy_client_scoped = resource_policy(
    name="vault-policy-client-scoped",
    description="Checks that Vault policies grant no wildcard path reaching other clients, no sudo and no "
                "sys/* path (the one exception: sys/seal in a policy named break-glass).",
    controls=["SEC-02", "SEC-03"],
    severity=Severity.CRITICAL,
    remediation="Grant each client's host only its own path, e.g. path \"odoo-hosting/data/<client>/*\" "
                "{ capabilities = [\"read\"] }; keep sys/seal in the break-glass policy only.",
    validate=_validate_vault_policy,
    applies_to=(POLICY,),
    config=_POLICY_CONFIG,
    scope="mixed",
)


_APPROLE_CONFIG = {
    "maximumTokenTtlSeconds": {
        "type": "integer", "minimum": 60, "default": DEFAULT_MAX_TOKEN_TTL,
        "description": "Longest AppRole token TTL and max TTL accepted, in seconds.",
    },
}


def _bound(props: Any, key: str) -> bool:
    """Whether ``key`` lists a CIDR. An entry unknown at preview (the address of a server not yet
    created, e.g. `host_ipv4.apply(...)`) is a binding the program set; its value is known, and
    judged, at `pulumi up`. A wholly unknown list raises: cannot tell whether it binds anything."""
    listed = get(props, key)
    if not isinstance(listed, Sequence) or isinstance(listed, str):
        return isinstance(listed, str) and bool(listed.strip())
    for i in range(len(listed)):
        try:
            entry = listed[i]
        except UnknownValueError:
            return True
        if isinstance(entry, str) and entry.strip():
            return True
    return False


def _validate_approle(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    max_ttl = config_int(args, "maximumTokenTtlSeconds", DEFAULT_MAX_TOKEN_TTL, minimum=60)
    for key in ("tokenTtl", "tokenMaxTtl"):
        raw = get(args.props, key)
        value = as_number(raw)
        if value is None or value <= 0 or value > max_ttl:
            what = "not set (Vault's default is 32 days)" if raw is None else shown(raw)
            report_violation(f"{key} is {what}; set {key} to at most {max_ttl} seconds.", None)
    uses = get(args.props, "secretIdNumUses")
    if as_number(uses) != 1:
        what = "not set (unlimited)" if uses is None else shown(uses)
        report_violation(f"secretIdNumUses is {what}; set secretIdNumUses to 1 (single-use secret-ids).", None)
    if not any(_bound(args.props, key) for key in ("tokenBoundCidrs", "secretIdBoundCidrs")):
        report_violation("neither tokenBoundCidrs nor secretIdBoundCidrs is set, so the secret-id and token "
                         "work from anywhere; bind them to the host's address (e.g. its VPN /32).", None)
    if any(str(p).strip().lower() == "root" for p in as_list(get(args.props, "tokenPolicies"))):
        report_violation("tokenPolicies includes 'root'; grant only the client's own policy.", None)


vault_approle_bound = resource_policy(
    name="vault-approle-role-bound",
    description="Checks that Vault AppRole roles issue short-lived tokens (tokenTtl and tokenMaxTtl <= 1 "
                "hour), single-use secret-ids, are bound to CIDRs and never grant the root policy.",
    controls=["SEC-02"],
    severity=Severity.HIGH,
    remediation="Set token_ttl/token_max_ttl <= 3600, secret_id_num_uses=1 and token_bound_cidrs/"
                "secret_id_bound_cidrs=[<host address>/32] on vault.approle.AuthBackendRole.",
    validate=_validate_approle,
    applies_to=(APPROLE_ROLE,),
    config=_APPROLE_CONFIG,
)


def _grants_seal(resource: Any) -> bool:
    try:
        name = get(resource.props, "name", resource.name)
        if not is_break_glass(name):
            return False
        rules = parse_policy(get(resource.props, "policy", ""))
    except (UnknownValueError, UnreadablePolicy):
        return False
    return any(r.path.strip().lstrip("/") == SEAL_PATH and set(r.capabilities) >= SEAL_CAPABILITIES for r in rules)


def _validate_vault_emergency(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    vault = [r for r in args.resources if r.resource_type.startswith("vault:")]
    # Audit devices, mounts and auth backends are singletons of the Vault server, owned by
    # the organisation stack; a client stack that only writes its own paths, policies and
    # AppRoles cannot (and must not) create them, so it is not the place to require them.
    if not any(r.resource_type in ORGANISATION_TYPES for r in vault):
        return
    if not any(r.resource_type == AUDIT for r in vault):
        report_violation("the stack manages Vault but enables no audit device; add a vault.Audit "
                         "(e.g. type \"file\") so every request is logged.", None)
    if not any(r.resource_type == POLICY and _grants_seal(r) for r in vault):
        report_violation("the stack manages Vault but has no break-glass policy granting sys/seal "
                         "(capabilities update and sudo); add a vault.Policy named e.g. 'break-glass-seal' "
                         "with path \"sys/seal\" { capabilities = [\"update\", \"sudo\"] }.", None)


vault_emergency_seal_and_audit = stack_policy(
    name="vault-stack-emergency-seal-and-audit",
    description="Checks that a stack that manages Vault enables an audit device and has a break-glass "
                "policy granting sys/seal.",
    controls=["SEC-03"],
    severity=Severity.HIGH,
    remediation="Add vault.Audit and a vault.Policy whose name contains 'break-glass' with "
                "path \"sys/seal\" { capabilities = [\"update\", \"sudo\"] }, granted only to the emergency "
                "operator.",
    validate=_validate_vault_emergency,
)


# --- the same effects through other Vault resources ----------------------------------------------
# Any auth method's role (kubernetes, jwt/oidc, aws, userpass...), a token role or a token can hand out
# the root policy; an AppRole secret-id can be left unbound or chosen in the program; a generic endpoint
# can write a policy or a role straight to Vault's API.

TOKEN = "vault:index/token:Token"
SECRET_ID = "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId"
GENERIC_ENDPOINT = "vault:index/genericEndpoint:GenericEndpoint"
_POLICY_LISTS = ("tokenPolicies", "policies", "allowedPolicies", "token_policies", "allowed_policies")
_POLICY_PATH = re.compile(r"^/?sys/(policy|policies/acl)/([^/]+)$")
_ROLE_PATH = re.compile(r"^/?auth/.+/role/[^/]+$|^/?auth/token/roles/[^/]+$")


def is_role_type(resource_type: str) -> bool:
    """Every auth method's role but AppRole's (``vault-approle-role-bound`` judges that one), tokens,
    AppRole secret-ids and generic endpoints."""
    if resource_type == APPROLE_ROLE:
        return False
    return (resource_type.startswith("vault:") and resource_type.endswith("/authBackendRole:AuthBackendRole")) \
        or resource_type in (TOKEN, SECRET_ID, GENERIC_ENDPOINT, "vault:tokenauth/authBackendRole:AuthBackendRole")


def _root_granted(props: Any) -> list[str]:
    return [key for key in _POLICY_LISTS
            if any(str(p).strip().lower() == "root" for p in as_list(get(props, key)))]


def _generic_endpoint_problems(props: Any, min_depth: int) -> list[str]:
    path = str(get(props, "path", ""))
    raw = get(props, "dataJson")
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        data = None
    policy = _POLICY_PATH.match(path)
    if policy:
        text = data.get("policy") if isinstance(data, dict) else None
        if not isinstance(text, str):
            return [f"it writes the Vault policy at {path} but its dataJson has no readable policy, so it cannot "
                    "be checked; use vault.Policy"]
        try:
            rules = parse_policy(text)
        except UnreadablePolicy as e:
            return [f"the policy it writes at {path} cannot be read ({e}); use vault.Policy"]
        return [f"the policy it writes at {path}: {p}" for p in rule_problems(rules, policy.group(2), min_depth)]
    if _ROLE_PATH.match(path) and isinstance(data, dict) and _root_granted(data):
        return [f"the role it writes at {path} grants the root policy; grant only the policies the role needs"]
    return []


def _validate_role(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == GENERIC_ENDPOINT:
        min_depth = config_int(args, "minimumGlobDepth", DEFAULT_MIN_GLOB_DEPTH, minimum=1)
        for problem in _generic_endpoint_problems(args.props, min_depth):
            report_violation(f"generic endpoint: {problem}.", None)
        return
    if args.resource_type == SECRET_ID:
        if not [c for c in as_list(get(args.props, "cidrLists")) if isinstance(c, str) and c.strip()]:
            report_violation("the secret-id has no cidrLists, so it works from anywhere; bind it to the address "
                             "of the host that uses it.", None)
        if get(args.props, "secretId") is not None:
            report_violation("secretId is chosen in the program, so the secret is in its code and inputs; leave "
                             "secret_id unset and let Vault generate it.", None)
        return
    for key in _root_granted(args.props):
        report_violation(f"{key} includes 'root', which hands every token the whole of Vault; grant only the "
                         "policies the role needs.", None)


vault_role_least_privilege = resource_policy(
    name="vault-auth-role-least-privilege",
    description="Checks that no Vault auth role (any method), token role or token grants the root policy, that "
                "AppRole secret-ids are bound to CIDRs and generated by Vault, and that generic endpoints "
                "writing policies or roles obey the same rules as vault.Policy.",
    controls=["SEC-02"],
    severity=Severity.CRITICAL,
    remediation="Grant roles only their own policies; set cidr_lists on AuthBackendRoleSecretId and leave "
                "secret_id unset; write policies with vault.Policy rather than a GenericEndpoint.",
    validate=_validate_role,
    applies_to=is_role_type,
    config=_POLICY_CONFIG,
)
