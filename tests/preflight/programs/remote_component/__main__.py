"""A component whose implementation lives in a provider plugin, declared as its generated SDK does."""

import pulumi
import pulumi_hcloud as hcloud


class Vpc(pulumi.ComponentResource):
    """What `pulumi_awsx.ec2.Vpc` does: register remotely; the plugin creates the VPC, subnets, gateways."""

    vpc_id: pulumi.Output[str]

    def __init__(self, name: str, cidr_block: str, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"cidr_block": cidr_block, "vpc_id": None, "private_subnet_ids": None}
        super().__init__("awsx:ec2:Vpc", name, props, opts, remote=True)


vpc = Vpc("main", cidr_block="10.0.0.0/16")
hcloud.Network("net", ip_range="10.1.0.0/16")
pulumi.export("vpcId", vpc.vpc_id)
