"""odoo-hosting: one isolated, hardened Odoo host per stack (= per client)."""

import pulumi

from components.client_stack import ClientStack, ClientStackArgs
from components.settings import load_settings

settings = load_settings()
client = ClientStack(settings.client_id, ClientStackArgs(settings=settings))

pulumi.export("clientId", settings.client_id)
pulumi.export("exposure", settings.exposure)
pulumi.export("domains", list(settings.domains))
pulumi.export("ipv4Address", client.ipv4_address)
pulumi.export("ipv6Address", client.ipv6_address)
pulumi.export("privateIp", client.private_ip)
pulumi.export("vpnEndpoint", client.vpn_endpoint)
pulumi.export("vpnHostPublicKey", client.vpn_host_public_key)
pulumi.export("vpnHostAddress", client.vpn_host_address)
pulumi.export("sshHostPublicKey", client.ssh_host_public_key)
pulumi.export("sshKnownHosts", client.ssh_known_hosts)
pulumi.export("dataVolumeId", client.data_volume_id)
pulumi.export("bootSecretsPath", client.boot_secrets_path)
pulumi.export("appUrl", client.app_url)
pulumi.export("internalCaCertificate", client.internal_ca_cert_pem)
pulumi.export("incidentTopicArn", client.incident_topic_arn)
