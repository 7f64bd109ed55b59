"""The client's incident channel (INC-01): an SNS topic in the EU.

Backup failures (the backup timer's OnFailure hook) and security events
(fail2ban bans over a threshold, Vault audit alerts) publish here; the
client's contacts are e-mail subscriptions. SNS was chosen because the
backups already live in AWS (pulumi-aws), it needs no server of its own, it
is regional (pinned to an EU region on an explicit provider, RES-01) and it
encrypts at rest with a per-client KMS key.

E-mail subscriptions stay "pending confirmation" until each contact clicks
the link AWS sends; that is AWS's anti-spam rule, not something to bypass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_account import account_id, render_key_policy, sns_topic_arn

PUBLISHER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
"""What a publisher needs on the topic's key (SNS encrypts each message with a data key)."""


def incident_topic_name(client_id: str) -> str:
    return f"odoo-hosting-{client_id}-incidents"


def render_publisher_policy(topic_arn: str) -> str:
    """A publisher's identity policy: sns:Publish on the client's incident topic, nothing else."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReportIncidents", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": [topic_arn]}]},
        sort_keys=True)


@dataclass(frozen=True)
class Publisher:
    """An IAM user that may publish to the topic (the host's notifier uses the backup identity)."""

    user_name: pulumi.Input[str]
    user_arn: pulumi.Input[str]
    """Known at preview and depending on the user: the topic key's policy names it as a principal."""


@dataclass(frozen=True, kw_only=True)
class IncidentChannelArgs:
    """Arguments of :class:`IncidentChannel`."""

    client_id: str
    region: str
    """EU AWS region (validated by settings)."""
    contacts: Sequence[str]
    """E-mail addresses of the client's incident contacts."""
    tags: Mapping[str, str]
    publishers: Sequence[Publisher] = ()

    def __post_init__(self) -> None:
        if not self.region.startswith("eu-"):
            raise ValueError("the incident channel stays in an EU region")
        if not self.contacts:
            raise ValueError("an incident channel needs at least one contact")


class IncidentChannel(pulumi.ComponentResource):
    """Per-client SNS topic (KMS-encrypted) with the client's contacts subscribed."""

    topic_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    """The topic's KMS key: a publisher needs kms:GenerateDataKey and kms:Decrypt on it."""

    def __init__(self, name: str, args: IncidentChannelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:app:IncidentChannel", name, None, opts)
        tags = dict(args.tags)
        provider = aws.Provider(f"{name}-aws", region=args.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
                                opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        account = account_id(provider)
        topic_name = incident_topic_name(args.client_id)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"odoo-hosting {args.client_id}: incident channel",
            policy=pulumi.Output.all(account, *(p.user_arn for p in args.publishers)).apply(
                lambda v: render_key_policy(v[0], {arn: PUBLISHER_KEY_ACTIONS for arn in v[1:]})),
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True),
        )
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=topic_name,
            # The key id (accepted like the ARN); known as soon as the key exists.
            kms_master_key_id=key.id,
            tags=tags,
            opts=child,
        )
        for email in args.contacts:
            # Named by the address, not its position: reordering the list changes nothing.
            digest = hashlib.sha256(email.lower().encode()).hexdigest()[:10]
            aws.sns.TopicSubscription(f"{name}-contact-{digest}", topic=topic.arn, protocol="email", endpoint=email,
                                      opts=child)
        # Named from the account, region and name (as SNS does), so the policy is known at preview.
        known_topic_arn = account.apply(lambda a: sns_topic_arn(args.region, a, topic_name))
        for n, publisher in enumerate(args.publishers):
            aws.iam.UserPolicy(f"{name}-publisher-{n}", user=publisher.user_name,
                               policy=known_topic_arn.apply(render_publisher_policy), opts=child)
        self.topic_arn = topic.arn
        self.key_arn = key.arn
        self.register_outputs({"topic_arn": self.topic_arn, "key_arn": self.key_arn})
