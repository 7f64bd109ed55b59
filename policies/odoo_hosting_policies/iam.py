"""BKP-05: bucket credentials are limited to the client's own bucket (no ``*`` action or resource).

:func:`statements` reads an IAM policy document the way AWS does (a JSON
string or an object; ``Statement`` a single object or a list; ``Action``,
``Resource``... a string or a list), so the same reading serves the S3
bucket policy checks in :mod:`.buckets`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity
from pulumi_policy.proxy import UnknownValueError

from ._meta import as_list, get, resource_policy

IAM_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE = "aws:iam/role:Role"
POLICY_TYPES = (IAM_POLICY, USER_POLICY, ROLE_POLICY, GROUP_POLICY)

# "*", "s3:*", "*:*", "S3:*": the whole of a service (or of AWS).
_ALL_ACTIONS = re.compile(r"^\s*(\*|[A-Za-z0-9*-]+:\*)\s*$")


class BadDocument(Exception):
    """The policy document cannot be read; the message says why."""


def _plain(value: Any) -> Any:
    """A plain copy of a (proxied) value; an unknown anywhere inside raises UnknownValueError."""
    if isinstance(value, Mapping):
        return {str(k): _plain(value[k]) for k in value}
    if isinstance(value, (str, bytes)) or value is None:
        return value
    try:
        return [_plain(value[i]) for i in range(len(value))]
    except TypeError:
        return value


def parse_document(value: Any) -> Mapping[str, Any]:
    """The policy document as a plain dict, or :class:`BadDocument`."""
    value = _plain(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadDocument("the policy is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadDocument("the policy is not a JSON object")
    return value


def statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = document.get("Statement", [])
    items = [raw] if isinstance(raw, dict) else list(raw) if isinstance(raw, list) else None
    if items is None or not all(isinstance(s, dict) for s in items):
        raise BadDocument("Statement is neither an object nor a list of objects")
    return items


def strings(value: Any) -> list[str]:
    """``Action``/``Resource``/... as a list of strings (a single string counts as a list of one)."""
    return [str(v) for v in ([value] if isinstance(value, str) else value or [])] if value is not None else []


def is_allow(statement: Mapping[str, Any]) -> bool:
    return str(statement.get("Effect", "")).strip().lower() == "allow"


def _label(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return f"statement {index}" + (f" ('{sid}')" if isinstance(sid, str) and sid else "")


def _wide_resource(resource: str) -> bool:
    """A resource that reaches beyond one named resource.

    S3 ARNs may use wildcards only in the object key (``arn:aws:s3:::bucket/*``);
    any other ARN with a wildcard, and ``*`` itself, is too wide.
    """
    text = resource.strip()
    if text == "*" or not text:
        return True
    if not any(c in text for c in "*?"):
        return False
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[2].lower() == "s3":
        if any(c in p for p in parts[:5] for c in "*?"):
            return True
        bucket = parts[5].split("/", 1)[0]
        return any(c in bucket for c in "*?") or not bucket
    return True


def allow_statements(document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, statement) of each Allow statement."""
    return [(_label(st, i), st) for i, st in enumerate(statements(document)) if is_allow(st)]


def wide_actions(statement: Mapping[str, Any]) -> list[str]:
    """The statement's actions that name a whole service (or all of AWS)."""
    return [a for a in strings(statement.get("Action")) if _ALL_ACTIONS.match(a)]


def _not_action(where: str, statement: Mapping[str, Any]) -> list[str]:
    return [f"{where} allows NotAction, which grants every action not listed; list the actions in Action "
            "instead"] if "NotAction" in statement else []


def permission_problems(document: Mapping[str, Any]) -> list[str]:
    """What makes an identity policy wider than the resources it names."""
    problems: list[str] = []
    for where, st in allow_statements(document):
        problems += _not_action(where, st)
        wide = wide_actions(st)
        if wide:
            problems.append(f"{where} allows the wildcard action(s) {', '.join(wide)}; list the specific "
                            "actions (e.g. s3:GetObject, s3:PutObject, s3:ListBucket)")
        if "NotResource" in st:
            problems.append(f"{where} uses NotResource, which covers every resource not listed; name the "
                            "resources the identity needs in Resource instead")
        wide_res = [r for r in strings(st.get("Resource")) if _wide_resource(r)]
        if wide_res:
            problems.append(f"{where} allows the wildcard resource(s) {', '.join(wide_res)}; name the ARNs "
                            "the identity needs (e.g. arn:aws:s3:::<bucket> and arn:aws:s3:::<bucket>/*)")
    return problems


def _any_principal(principal: Any) -> bool:
    if isinstance(principal, str):
        return principal.strip() == "*"
    if isinstance(principal, dict):
        return any(v.strip() == "*" for vs in principal.values() for v in strings(vs))
    return False


def trust_problems(document: Mapping[str, Any]) -> list[str]:
    """A role trust policy that lets anyone assume the role."""
    return [f"{_label(st, i)} of assumeRolePolicy lets any principal ('*') assume the role; name the "
            "principal that may assume it"
            for i, st in enumerate(statements(document))
            if is_allow(st) and _any_principal(st.get("Principal")) and not st.get("Condition")]


def _documents(args: ResourceValidationArgs) -> list[tuple[str, Any, bool]]:
    """(where, document, is trust policy) of the resource."""
    if args.resource_type in POLICY_TYPES:
        return [("policy", get(args.props, "policy"), False)]
    if args.resource_type != ROLE:
        return []
    docs: list[tuple[str, Any, bool]] = [("assumeRolePolicy", get(args.props, "assumeRolePolicy"), True)]
    for i, inline in enumerate(as_list(get(args.props, "inlinePolicies"))):
        if isinstance(inline, Mapping):
            name = get(inline, "name")
            docs.append((f"inline policy '{name}'" if name else f"inlinePolicies[{i}]", get(inline, "policy"), False))
    return docs


def _judge_document(where: str, raw: Any, judge: Callable[[Mapping[str, Any]], list[str]],
                    report_violation: ReportViolation) -> None:
    """Each problem ``judge`` finds in the document at ``where``. None or empty: no document (AWS's
    default); an unreadable one is a violation; an unknown one raises (cannot check)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return
    try:
        problems = judge(parse_document(raw))
    except BadDocument as e:
        report_violation(f"{where}: {e}, so its permissions cannot be checked; pass a JSON policy "
                         "document (e.g. json.dumps or aws.iam.get_policy_document).", None)
        return
    for problem in problems:
        report_violation(f"{where}: {problem}.", None)


def _validate_iam(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for where, raw, trust in _documents(args):
        _judge_document(where, raw, trust_problems if trust else permission_problems, report_violation)


iam_policy_least_privilege = resource_policy(
    name="aws-iam-policy-no-wildcards",
    description="Checks that IAM policies (managed, user, role, group and role inline policies) allow no "
                "'*' or 'service:*' action, no NotAction/NotResource and no wildcard resource, and that "
                "role trust policies do not let any principal assume the role.",
    controls=["BKP-05"],
    severity=Severity.CRITICAL,
    remediation="Give each client's backup identity a policy that allows only the S3 actions restic needs "
                "on arn:aws:s3:::<client bucket> and arn:aws:s3:::<client bucket>/* (its use of the client's "
                "KMS key named by ARN, or granted in the key's policy).",
    validate=_validate_iam,
    applies_to=POLICY_TYPES + (ROLE,),
)


def document_or_none(raw: Any) -> Mapping[str, Any] | None:
    """The parsed document, or None when it cannot be read."""
    try:
        return parse_document(raw)
    except BadDocument:
        return None


# --- the same effect through an attachment: AWS managed admin policies --------------------

ATTACHMENT_TYPES = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                    "aws:iam/policyAttachment:PolicyAttachment")
_MANAGED_ADMIN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?(AdministratorAccess|PowerUserAccess|"
                            r"[A-Za-z0-9]*FullAccess[A-Za-z0-9_-]*)$")


def admin_managed_policy(arn: Any) -> str | None:
    """The name of the AWS managed policy ``arn`` when it grants a whole service (or all of AWS)."""
    if not isinstance(arn, str):
        return None
    match = _MANAGED_ADMIN.match(arn.strip())
    return match.group(1) if match else None


def _created_here(read: Any) -> Any:
    """An ARN, or None when it is unknown at preview. An AWS managed policy's ARN is a literal (or an
    invoke's result, known at preview); an unknown one is the ARN of a policy this deployment creates
    (arn:aws:iam::<account>:policy/...), never AWS's, and aws-iam-policy-no-wildcards judges its document."""
    try:
        return read()
    except UnknownValueError:
        return None


def _validate_attachment(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == ROLE:
        listed = get(args.props, "managedPolicyArns")  # a wholly unknown list raises: cannot check
        count = len(listed) if isinstance(listed, Sequence) and not isinstance(listed, str) else 0
        arns = [(f"managedPolicyArns[{i}]", _created_here(lambda i=i: listed[i])) for i in range(count)]
    else:
        arns = [("policyArn", _created_here(lambda: get(args.props, "policyArn")))]
    for where, arn in arns:
        name = admin_managed_policy(arn)
        if name:
            report_violation(f"{where} attaches the AWS managed policy {name}, which allows every action of a "
                             "whole service (or of AWS) on every resource; attach a policy of your own that "
                             "lists the actions and resource ARNs the identity needs.", None)


iam_no_admin_managed_policy = resource_policy(
    name="aws-iam-no-admin-managed-policy",
    description="Checks that no role, user or group gets an AWS managed admin policy (AdministratorAccess, "
                "PowerUserAccess, *FullAccess) through a policy attachment or a role's managedPolicyArns.",
    controls=["BKP-05"],
    severity=Severity.CRITICAL,
    remediation="Replace the managed policy with an aws.iam.Policy listing specific actions on named resources "
                "and attach that instead.",
    validate=_validate_attachment,
    applies_to=ATTACHMENT_TYPES + (ROLE,),
)


# --- the same effect through a key's own policy: who may use a KMS key --------------------

KMS_KEY_POLICY_TYPES = ("aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy", "aws:kms/replicaKey:ReplicaKey",
                        "aws:kms/externalKey:ExternalKey", "aws:kms/replicaExternalKey:ReplicaExternalKey")
_ACCOUNT_ROOT = re.compile(r"^(arn:aws[a-z-]*:iam::\d{12}:root|\d{12})$")


def _principals(principal: Any) -> list[str]:
    if isinstance(principal, str):
        return [principal.strip()]
    if isinstance(principal, Mapping):
        return [v.strip() for vs in principal.values() for v in strings(vs)]
    return []


def key_policy_problems(document: Mapping[str, Any]) -> list[str]:
    """What makes a key policy grant its key wider than to named identities for named actions.

    Resource "*" in a key policy is the key itself. The account root with kms:* is AWS's default key
    policy (it lets the account's IAM policies grant the key, which this pack judges there)."""
    problems: list[str] = []
    for where, st in allow_statements(document):
        if "NotPrincipal" in st:
            problems.append(f"{where} allows NotPrincipal, which grants the key to every principal not listed; "
                            "name the principals in Principal instead")
        problems += _not_action(where, st)
        principals = _principals(st.get("Principal"))
        if _any_principal(st.get("Principal")) and not st.get("Condition"):
            problems.append(f"{where} lets any principal ('*'), of any AWS account, use the key; name the "
                            "identities that need it by their ARNs")
        wide = wide_actions(st)
        others = [p for p in principals if not _ACCOUNT_ROOT.match(p)]
        if wide and others:
            problems.append(f"{where} allows {', '.join(wide)} to {', '.join(others)}: every KMS action, key "
                            "deletion and policy changes included; only the account root (AWS's default "
                            "statement) may hold that, grant the others the actions they use (e.g. "
                            "kms:Encrypt, kms:Decrypt, kms:GenerateDataKey)")
    return problems


def _validate_key_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # No policy: AWS's default key policy (the account root, through IAM).
    _judge_document("policy", get(args.props, "policy"), key_policy_problems, report_violation)


kms_key_policy_least_privilege = resource_policy(
    name="aws-kms-key-policy-least-privilege",
    description="Checks that a KMS key's policy lets no principal of any account ('*', NotPrincipal) use the "
                "key and gives kms:* (or NotAction) to no one but the account root.",
    controls=["BKP-05"],
    severity=Severity.CRITICAL,
    remediation="Keep AWS's default statement (the account root, kms:*) and grant each identity that uses the "
                "key by its ARN, with the actions it uses (kms:Encrypt, kms:Decrypt, kms:GenerateDataKey, "
                "kms:DescribeKey).",
    validate=_validate_key_policy,
    applies_to=KMS_KEY_POLICY_TYPES,
)
