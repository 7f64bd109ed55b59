"""ARNs the program writes itself, so the policies that name them are known at preview (BKP-05, INC-01).

AWS derives an IAM user's or SNS topic's ARN from the account, the region and the name the program
chooses; the `arn` output of a resource not yet created is unknown during `pulumi preview`, so a
policy built from it cannot be judged there (preflight reports it as NOT JUDGED). The account id comes
from ``aws.get_caller_identity``, an invoke that a real preview answers (it reads the credentials'
account). A KMS key's ARN ends in a random key id AWS picks, so nothing can name it before it
exists: the identities that use a key are granted it in the key's own policy instead, which names
them by their (derivable) ARNs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    """The account the provider's credentials belong to (known at preview)."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id


def account_root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def iam_user_arn(account: str, path: str, name: str) -> str:
    """``arn:aws:iam::<account>:user<path><name>`` (path begins and ends with '/')."""
    if not (path.startswith("/") and path.endswith("/")):
        raise ValueError(f"an IAM path begins and ends with '/', not {path!r}")
    return f"arn:aws:iam::{account}:user{path}{name}"


def sns_topic_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{name}"


def known_user_arn(user: aws.iam.User, account: pulumi.Output[str], path: str, name: str) -> pulumi.Output[str]:
    """The user's ARN, known at preview, depending on the user (its URN is known at preview as well), so
    a policy naming it as a principal is only written once the user exists (AWS refuses an unknown
    principal)."""
    return pulumi.Output.all(user.urn, account).apply(lambda v: iam_user_arn(v[1], path, name))


def render_key_policy(account: str, grants: Mapping[str, Sequence[str]]) -> str:
    """A KMS key policy: the account administers the key through IAM (AWS's default key policy, which
    also keeps the key manageable), and each principal ARN of ``grants`` may use it for the listed
    actions only. In a key policy, Resource "*" is the key itself."""
    statements: list[dict[str, object]] = [
        {"Sid": "AccountAdministersTheKey", "Effect": "Allow", "Principal": {"AWS": account_root_arn(account)},
         "Action": "kms:*", "Resource": "*"}]
    for n, (principal, actions) in enumerate(sorted(grants.items())):
        if any("*" in a for a in actions):
            raise ValueError(f"a key grant lists specific actions, not {sorted(actions)}")
        statements.append({"Sid": f"UseTheKey{n}", "Effect": "Allow", "Principal": {"AWS": principal},
                           "Action": sorted(actions), "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
