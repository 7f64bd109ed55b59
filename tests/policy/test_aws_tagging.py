"""ISO-01 on AWS: every taggable resource carries the client tag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi_aws
import pytest

from odoo_hosting_policies import labels

from .conftest import AWS_PROVIDER, run_policy, run_stack_policy, stack_resource

TAG = labels.aws_client_tag
KMS_KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"


def provider_with_default_tags(tags, encoded: bool):
    from pulumi_policy import PolicyProviderResource
    from pulumi_policy.proxy import unknown_checking_proxy
    value = {"tags": tags}
    props = {"region": "eu-central-1", "defaultTags": json.dumps(value) if encoded else value}
    return PolicyProviderResource(AWS_PROVIDER, unknown_checking_proxy(props),
                                  f"urn:pulumi:dev::odoo-hosting::{AWS_PROVIDER}::acme", "acme")


@pytest.mark.parametrize("resource_type", [BUCKET, KMS_KEY, "aws:iam/role:Role", "aws:iam/user:User"])
def test_tagged_resource_passes(resource_type):
    assert run_policy(TAG, resource_type, {"tags": {"client": "acme"}}) == []


@pytest.mark.parametrize("tags", [None, {}, {"client": ""}, {"Client": "acme"}])
def test_resource_without_client_tag_is_a_violation(tags):
    props = {} if tags is None else {"tags": tags}
    [message] = run_policy(TAG, BUCKET, props)
    assert "'client'" in message


@pytest.mark.parametrize("encoded", [False, True])
def test_client_tag_from_provider_default_tags_passes(encoded):
    assert run_policy(TAG, KMS_KEY, {}, provider_resource=provider_with_default_tags({"client": "acme"}, encoded)) == []


def test_provider_default_tags_without_client_is_a_violation():
    assert run_policy(TAG, KMS_KEY, {}, provider_resource=provider_with_default_tags({"team": "ops"}, False))


def test_types_without_tags_are_not_judged():
    assert run_policy(TAG, "aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": "{}"}) == []


def test_tag_key_comes_from_policy_config():
    assert run_policy(TAG, BUCKET, {"tags": {"tenant": "acme"}}, config={"clientLabelKey": "tenant"}) == []


def test_stack_mixing_clients_through_docker_container_labels_is_a_violation():
    container = {"name": "odoo", "labels": [{"label": "client", "value": "globex"}]}
    resources = [stack_resource(BUCKET, {"tags": {"client": "acme"}}, "bucket"),
                 stack_resource("docker:index/container:Container", container, "odoo")]
    assert run_stack_policy(labels.pulumi_stack_single_client, resources)


def test_tagged_type_list_matches_the_installed_pulumi_aws():
    """aws_tagged_types.txt is generated from pulumi-aws; regenerate it when the SDK changes."""
    found = set()
    for path in Path(pulumi_aws.__file__).parent.rglob("*.py"):
        text = path.read_text()
        if '__props__.__dict__["tags"] = tags' in text:
            found |= set(re.findall(r"super\(\w+, __self__\).__init__\(\s*'(aws:[^']+)'", text))
    assert found == set(labels.AWS_TAGGED_TYPES)
