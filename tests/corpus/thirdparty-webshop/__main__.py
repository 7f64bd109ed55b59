"""A hardened third-party program: a web shop on Hetzner and AWS, written without any odoo-hosting
component, label or tag. The `clean` stack must come back clean; every other stack adds exactly one
exposure (the stack config `exposure`), and must come back with exactly that control."""
import hashlib
import json

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_hcloud as hcloud
import pulumi_tls as tls

EXPOSURE = pulumi.Config().get("exposure") or "clean"
PROTECT = pulumi.ResourceOptions(protect=True)
VPN = ["10.8.0.0/24"]
WORLD = ["0.0.0.0/0", "::/0"]

USER_DATA = """#cloud-config
ssh_pwauth: false
disable_root: true
users:
  - name: deploy
    groups: [sudo]
    lock_passwd: true
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJBOG4dWQSWkLsAhbV6sQyxxW1wZoE8o2vRUPWqrMotW deploy@shop
write_files:
  - path: /etc/ssh/sshd_config.d/01-shop.conf
    content: |
      PasswordAuthentication no
      KbdInteractiveAuthentication no
      PermitRootLogin no
      AuthenticationMethods publickey
      MaxAuthTries 3
runcmd:
  - [systemctl, reload, ssh]
"""
if EXPOSURE == "chpasswd":
    # a password derived at run time (the same every run, so previews compare): the fixture holds none
    USER_DATA += f"chpasswd:\n  expire: false\n  list: |\n    deploy:{hashlib.sha256(b'webshop').hexdigest()[:16]}\n"
if EXPOSURE == "runcmd-sshd":
    USER_DATA += "bootcmd:\n  - sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/01-shop.conf\n"

# --- Hetzner: a web server behind a firewall and a load balancer ---------------------------------
key = hcloud.SshKey("deploy", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJBOG4dWQSWkLsAhbV6sQyxxW1wZoE8o2vRUPWqrMotW")
firewall = hcloud.Firewall("web", rules=[
    hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="443", source_ips=WORLD),
    hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="80", source_ips=WORLD),
    hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=VPN),
])
server = hcloud.Server("web", server_type="cx23", image="debian-12", location="fsn1", ssh_keys=[key.id],
                       firewall_ids=[firewall.id.apply(int)], user_data=USER_DATA,
                       delete_protection=True, rebuild_protection=True)
hcloud.Volume("uploads", size=20, location="fsn1", delete_protection=EXPOSURE != "volume-unprotected",
              opts=None if EXPOSURE == "volume-unprotected" else PROTECT)
lb = hcloud.LoadBalancer("front", load_balancer_type="lb11", location="fsn1")
hcloud.LoadBalancerTarget("front-web", load_balancer_id=lb.id.apply(int), type="server",
                          server_id=server.id.apply(int))
hcloud.LoadBalancerService("front-https", load_balancer_id=lb.id, protocol="tcp", listen_port=443,
                           destination_port=443)
if EXPOSURE == "lb-ssh":
    hcloud.LoadBalancerService("lb-ssh", load_balancer_id=lb.id, protocol="tcp", listen_port=2222,
                               destination_port=22)

# --- AWS: a private, encrypted database and static assets --------------------------------------
vpc = aws.ec2.Vpc("shop", cidr_block="10.20.0.0/16")
web_sg = aws.ec2.SecurityGroup("web", vpc_id=vpc.id, ingress=[
    aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"]),
    aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22, cidr_blocks=VPN),
] + ([aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])]
     if EXPOSURE == "sg-ssh-world" else []))
db_sg = aws.ec2.SecurityGroup("db", vpc_id=vpc.id)
aws.vpc.SecurityGroupIngressRule("db-from-web", security_group_id=db_sg.id, ip_protocol="tcp", from_port=5432,
                                 to_port=5432, referenced_security_group_id=web_sg.id)
if EXPOSURE == "sg-rule-postgres":
    aws.ec2.SecurityGroupRule("db-world", type="ingress", security_group_id=db_sg.id, protocol="tcp",
                              from_port=5432, to_port=5432, cidr_blocks=["0.0.0.0/0"])
if EXPOSURE == "ingress-rule-all":
    aws.vpc.SecurityGroupIngressRule("all-world", security_group_id=db_sg.id, ip_protocol="-1", cidr_ipv6="::/0")
aws.rds.Instance("orders", engine="postgres", instance_class="db.t4g.micro", allocated_storage=20,
                 username="shop", manage_master_user_password=True, vpc_security_group_ids=[db_sg.id],
                 publicly_accessible=EXPOSURE == "rds-public", storage_encrypted=True, opts=PROTECT)
aws.ebs.Volume("scratch", availability_zone="eu-central-1a", size=10, encrypted=EXPOSURE != "ebs-plain")

assets = aws.s3.Bucket("assets", opts=PROTECT)
aws.s3.BucketServerSideEncryptionConfiguration("assets", bucket=assets.id, rules=[
    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="AES256"))])
aws.s3.BucketPublicAccessBlock("assets", bucket=assets.id, block_public_acls=True, block_public_policy=True,
                               ignore_public_acls=True, restrict_public_buckets=True)
if EXPOSURE != "bucket-no-tls":
    aws.s3.BucketPolicy("assets", bucket=assets.id, policy=assets.arn.apply(lambda arn: json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})))

deployer = aws.iam.Role("deployer", assume_role_policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}))
upload = aws.iam.Policy("upload-assets", policy=assets.arn.apply(lambda arn: json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"{arn}/*"}]})))
aws.iam.RolePolicyAttachment("deployer-upload", role=deployer.name, policy_arn=upload.arn)
if EXPOSURE == "admin-attach":
    aws.iam.RolePolicyAttachment("deployer-admin", role=deployer.name,
                                 policy_arn="arn:aws:iam::aws:policy/AdministratorAccess")

# --- the app container and its TLS material ----------------------------------------------------
IMAGE = "nginx:1.27@sha256:" + "0" * 64
docker.Container("shop", image=IMAGE, security_opts=["no-new-privileges:true"],
                 ports=[docker.ContainerPortArgs(internal=80, external=8080)])
if EXPOSURE == "container-redis":
    docker.Container("cache", image="redis:7@sha256:" + "1" * 64, security_opts=["no-new-privileges:true"],
                     ports=[docker.ContainerPortArgs(internal=6379, external=6379)])
tls_key = tls.PrivateKey("internal", algorithm="ECDSA", ecdsa_curve="P256")
tls.SelfSignedCert("internal", private_key_pem=tls_key.private_key_pem, validity_period_hours=24 * 90,
                   early_renewal_hours=24 * 30, allowed_uses=["server_auth"],
                   subject=tls.SelfSignedCertSubjectArgs(common_name="shop.internal"))
