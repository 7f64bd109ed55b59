"""Data sources: one computed locally, lookups of cloud state, and one only an answers file can answer."""

import pulumi
import pulumi_aws as aws
import pulumi_hcloud as hcloud

config = pulumi.Config()
document = aws.iam.get_policy_document(statements=[
    aws.iam.GetPolicyDocumentStatementArgs(
        sid="ReadLogs",
        actions=["s3:GetObject", "s3:ListBucket"],
        resources=["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"],
        conditions=[aws.iam.GetPolicyDocumentStatementConditionArgs(
            test="Bool", variable="aws:SecureTransport", values=["true"])],
    ),
    aws.iam.GetPolicyDocumentStatementArgs(
        effect="Deny", actions=["s3:DeleteObject"], resources=["*"],
        principals=[aws.iam.GetPolicyDocumentStatementPrincipalArgs(type="AWS", identifiers=["*"])],
    ),
])
aws.iam.Policy("logs-read", policy=document.json)

zones = aws.get_availability_zones(state="available")
ami = aws.ec2.get_ami(most_recent=True, owners=["136693071363"],
                      filters=[aws.ec2.GetAmiFilterArgs(name="name", values=["debian-12-amd64-*"])])
aws.ec2.Instance("bastion", ami=ami.id, instance_type="t3.micro", availability_zone=zones.names[0])

key = hcloud.get_ssh_key(name="ops")
image = hcloud.get_image(name="debian-12")
hcloud.Server("web", server_type=hcloud.get_server_type(name="cx22").name, image=image.name,
              location=hcloud.get_location(name="nbg1").name, ssh_keys=[str(key.id)])
hcloud.Firewall("web-in", rules=[hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="443",
                                                        source_ips=["0.0.0.0/0", "::/0"])])
pulumi.export("opsKey", key.public_key)

if config.get_bool("lookUpDefaultVpc"):
    vpc = aws.ec2.get_vpc(default=True)
    aws.ec2.SecurityGroup("web", vpc_id=vpc.id, description=f"in {vpc.cidr_block}")
