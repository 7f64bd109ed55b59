"""RES-01 / BKP-02: Hetzner and AWS resources stay in the EU."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UnknownValueError

from odoo_hosting_policies import location

from .conftest import (
    AWS_PROVIDER,
    BUCKET,
    SERVER,
    SUBNET,
    UNKNOWN,
    VOLUME,
    good_server,
    good_volume,
    provider,
    run_policy,
)

HCLOUD = location.hcloud_eu_location
AWS_PROVIDERS = location.aws_provider_eu_region
AWS_RESOURCES = location.aws_resource_eu_region


def server_with(**changes):
    server = good_server()
    for k, v in changes.items():
        if v is None:
            server.pop(k, None)
        else:
            server[k] = v
    return server


def test_server_in_fsn1_passes():
    assert run_policy(HCLOUD, SERVER, good_server()) == []


@pytest.mark.parametrize("loc", ["ash", "hil", "sin", "FSN2"])
def test_server_in_non_eu_location_is_a_violation(loc):
    [message] = run_policy(HCLOUD, SERVER, server_with(location=loc))
    assert "location" in message and loc in message


def test_server_location_case_difference_passes():
    assert run_policy(HCLOUD, SERVER, server_with(location="HEL1")) == []


def test_server_in_eu_datacenter_passes():
    assert run_policy(HCLOUD, SERVER, server_with(location=None, datacenter="nbg1-dc3")) == []


def test_server_in_us_datacenter_is_a_violation():
    assert run_policy(HCLOUD, SERVER, server_with(location=None, datacenter="ash-dc1"))


def test_server_without_location_or_datacenter_is_a_violation():
    [message] = run_policy(HCLOUD, SERVER, server_with(location=None))
    assert "Hetzner picks" in message


def test_server_with_unknown_location_raises_instead_of_passing():
    with pytest.raises(UnknownValueError):
        run_policy(HCLOUD, SERVER, server_with(location=UNKNOWN))


def test_volume_in_us_location_is_a_violation():
    volume = good_volume()
    volume["location"] = "ash"
    assert run_policy(HCLOUD, VOLUME, volume)


def test_volume_placed_by_server_id_passes():
    volume = good_volume()
    del volume["location"]
    volume["serverId"] = 7
    assert run_policy(HCLOUD, VOLUME, volume) == []


@pytest.mark.parametrize("resource_type,props", [
    ("hcloud:index/primaryIp:PrimaryIp", {"type": "ipv4", "assigneeType": "server", "datacenter": "hil-dc1"}),
    ("hcloud:index/primaryIp:PrimaryIp", {"type": "ipv4", "assigneeType": "server", "location": "sin"}),
    ("hcloud:index/floatingIp:FloatingIp", {"type": "ipv4", "homeLocation": "ash"}),
    ("hcloud:index/loadBalancer:LoadBalancer", {"loadBalancerType": "lb11", "location": "hil"}),
    ("hcloud:index/loadBalancer:LoadBalancer", {"loadBalancerType": "lb11", "networkZone": "us-east"}),
    ("hcloud:index/loadBalancer:LoadBalancer", {"loadBalancerType": "lb11"}),
    (SUBNET, {"networkId": 1, "type": "cloud", "networkZone": "us-west", "ipRange": "10.0.1.0/24"}),
])
def test_other_hcloud_resources_outside_eu_are_violations(resource_type, props):
    assert run_policy(HCLOUD, resource_type, props)


def test_subnet_in_eu_central_passes():
    assert run_policy(HCLOUD, SUBNET, {"networkId": 1, "type": "cloud", "networkZone": "eu-central",
                                       "ipRange": "10.0.1.0/24"}) == []


def test_location_policy_config_can_narrow_locations():
    assert run_policy(HCLOUD, SERVER, good_server(), config={"allowedLocations": ["hel1"]})


def test_bad_location_policy_config_is_reported_naming_the_key():
    [message] = run_policy(HCLOUD, SERVER, good_server(), config={"allowedLocations": "fsn1"})
    assert "allowedLocations" in message


# --- AWS -----------------------------------------------------------------------------

def test_aws_provider_in_eu_region_passes():
    assert run_policy(AWS_PROVIDERS, AWS_PROVIDER, {"region": "eu-central-1"}) == []


def test_aws_provider_in_us_region_is_a_violation():
    [message] = run_policy(AWS_PROVIDERS, AWS_PROVIDER, {"region": "us-east-1"})
    assert "us-east-1" in message and "aws:region" in message


def test_default_aws_provider_without_region_is_a_violation():
    assert run_policy(AWS_PROVIDERS, AWS_PROVIDER, {"version": "7.51.1"}, name="default_7_51_1")


def test_bucket_with_eu_provider_passes():
    assert run_policy(AWS_RESOURCES, BUCKET, {"bucket": "acme-backups"}, provider_resource=provider("eu-west-1")) == []


def test_bucket_with_us_provider_is_a_violation():
    [message] = run_policy(AWS_RESOURCES, BUCKET, {"bucket": "acme-backups"}, provider_resource=provider("us-west-2"))
    assert "us-west-2" in message


def test_bucket_with_own_us_region_input_is_a_violation():
    assert run_policy(AWS_RESOURCES, BUCKET, {"bucket": "b", "region": "us-east-1"},
                      provider_resource=provider("eu-west-1"))


def test_bucket_with_own_eu_region_on_us_provider_passes():
    assert run_policy(AWS_RESOURCES, BUCKET, {"bucket": "b", "region": "eu-north-1"},
                      provider_resource=provider("us-east-1")) == []


def test_server_types_are_not_restricted_by_default():
    assert run_policy(HCLOUD, SERVER, server_with(serverType="ccx63")) == []


def test_server_type_outside_allowed_server_types_is_a_violation():
    [message] = run_policy(HCLOUD, SERVER, server_with(serverType="cx22"), config={"allowedServerTypes": ["cx23", "cx33"]})
    assert "cx22" in message and "cx23" in message


def test_server_type_inside_allowed_server_types_passes():
    assert run_policy(HCLOUD, SERVER, server_with(serverType="CX33"), config={"allowedServerTypes": ["cx23", "cx33"]}) == []


def test_bad_allowed_server_types_config_is_reported_naming_the_key():
    [message] = run_policy(HCLOUD, SERVER, good_server(), config={"allowedServerTypes": []})
    assert "allowedServerTypes" in message


@pytest.mark.parametrize("resource_type", ["aws:s3/bucketV2:BucketV2",
                                           "aws:s3/bucketVersioning:BucketVersioning", "aws:kms/key:Key"])
def test_other_aws_data_resources_with_us_provider_are_violations(resource_type):
    assert run_policy(AWS_RESOURCES, resource_type, {"bucket": "acme-backups"}, provider_resource=provider("us-east-1"))
