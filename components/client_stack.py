"""ClientStack: the isolation boundary of one client (ISO-01).

One Pulumi stack builds one ClientStack. Everything a client has (server,
private network, firewall, data volume, keys, secrets) is a child of it,
named after the client and labelled with the client id, and nothing in it
refers to another client's resources.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pulumi

from components.address import HostAddress, HostAddressArgs
from components.app.app import ORIGIN_CERT_PATH, ORIGIN_KEY_PATH, OdooApp, OdooAppArgs
from components.app.caddyfile import internal_name, proxy_site, render_caddyfile
from components.app.images import ODOO_IMAGES
from components.app.notifications import IncidentChannel, IncidentChannelArgs, Publisher
from components.app.odoo_conf import render_odoo_conf
from components.app.secrets import ORIGIN_CERT, ORIGIN_KEY, AppSecrets, AppSecretsArgs
from components.app.tls import InternalTls, InternalTlsArgs
from components.backup import BackupStorage, BackupStorageArgs
from components.boot_secrets import BootSecrets, BootSecretsArgs
from components.firewall import ClientFirewall, ClientFirewallArgs
from components.host import Host, HostArgs
from components.hostconfig import render_host
from components.hostkeys import SshHostKey, SshHostKeyArgs, known_hosts_path, strict_ssh_options, write_known_hosts
from components.rotation import Rotation, utc_today
from components.secrets import ClientSecrets, ClientSecretsArgs
from components.settings import Settings, load_secret
from components.vpn import WireGuardHostKey, WireGuardHostKeyArgs


@dataclass(frozen=True, kw_only=True)
class ClientStackArgs:
    """Arguments of :class:`ClientStack`."""

    settings: Settings
    """The validated stack settings; the only input."""
    today: datetime.date = field(default_factory=utc_today)
    """The day (UTC) credential rotation is computed for (tests pin it)."""


class ClientStack(pulumi.ComponentResource):
    """One client's isolated, hardened Odoo host."""

    ipv4_address: pulumi.Output[str]
    ipv6_address: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    vpn_endpoint: pulumi.Output[str]
    vpn_host_public_key: pulumi.Output[str | None]
    vpn_host_address: pulumi.Output[str]
    ssh_host_public_key: pulumi.Output[str]
    ssh_known_hosts: pulumi.Output[str | None]
    """``<vpn address> ssh-ed25519 AAAA...``: what the Docker provider, operators and CI trust."""
    data_volume_id: pulumi.Output[str]
    boot_secrets_path: pulumi.Output[str]
    app_url: pulumi.Output[str]
    internal_ca_cert_pem: pulumi.Output[str | None]
    incident_topic_arn: pulumi.Output[str]
    app_secret_values: pulumi.Output[dict[str, str]]
    """Secret: the app's secrets on their way through the seam (tests read it)."""

    def __init__(self, name: str, args: ClientStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:client:ClientStack", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        firewall = ClientFirewall(
            f"{name}-firewall",
            ClientFirewallArgs(client_id=s.client_id, public=s.public, vpn_port=s.vpn.port, labels=s.labels),
            opts=child,
        )
        vpn_key = WireGuardHostKey(f"{name}-vpn", WireGuardHostKeyArgs(client_id=s.client_id), opts=child)
        host_key = SshHostKey(f"{name}-ssh-host-key",
                              SshHostKeyArgs(client_id=s.client_id, address=str(s.vpn.host_address)), opts=child)
        internal_tls = None
        origin_files: dict[str, pulumi.Input[str]] = {}
        if not s.public:
            internal_tls = InternalTls(
                f"{name}-tls",
                InternalTlsArgs(client_id=s.client_id, ip_addresses=[str(s.vpn.host_address)],
                                dns_names=[internal_name(s.client_id)]),
                opts=child,
            )
            origin_files = {ORIGIN_KEY: internal_tls.private_key_pem, ORIGIN_CERT: internal_tls.cert_pem}
        app_secrets = AppSecrets(
            f"{name}-app-secrets",
            AppSecretsArgs(client_id=s.client_id,
                           smtp_password=load_secret("smtpPassword") if "smtpPassword" in s.secrets_set else None,
                           extra=origin_files),
            opts=child,
        )
        secrets = BootSecrets(
            f"{name}-boot-secrets",
            BootSecretsArgs(client_id=s.client_id, wireguard_private_key=vpn_key.private_key,
                            ssh_host_key=host_key.private_key_openssh,
                            app_secrets=app_secrets.values),
            opts=child,
        )
        address = HostAddress(
            f"{name}-address",
            HostAddressArgs(client_id=s.client_id, location=s.location, protection=s.server_protection,
                            labels=s.labels),
            opts=child,
        )
        # The host's software: user-data pins the bundle, which lives in the backup bucket.
        host_config = render_host(s)
        # Backups (BKP-01..05) and the client's Vault paths, policies and AppRoles (SEC-01/02).
        rotation = Rotation(period_days=s.credential_rotation_days, today=args.today)
        b = s.backup
        backup = BackupStorage(
            f"{name}-backup",
            BackupStorageArgs(client_id=s.client_id, region=b.region, fast_restore_days=b.fast_restore_days,
                              deep_archive_days=b.deep_archive_days, retention_days=b.retention_days,
                              lock_days=b.lock_days, rotation=rotation, tags=s.labels,
                              host_bundle=host_config.bundle),
            opts=child,
        )
        # The host's notifier publishes with the backup identity (INC-01).
        incidents = IncidentChannel(
            f"{name}-incidents",
            IncidentChannelArgs(client_id=s.client_id, region=s.incident_region, contacts=s.incident_contacts,
                                tags=s.labels,
                                publishers=[Publisher(backup.user_name, backup.user_arn)]),
            opts=child,
        )
        host = Host(
            f"{name}-host",
            HostArgs(
                client_id=s.client_id,
                location=s.location,
                server_type=s.server_type,
                image=s.image,
                ssh_keys=s.ssh_keys,
                user_data=host_config.user_data,
                firewall_id=firewall.firewall_id,
                private_network=s.private_network,
                private_subnet=s.private_subnet,
                data_volume_gb=s.data_volume_gb,
                server_protection=s.server_protection,
                labels=s.labels,
                primary_ipv4_id=address.ipv4_id,
                # It fetches the bundle at first boot.
                ready=[backup.host_bundle_object],
            ),
            opts=child,
        )

        docker_host = f"ssh://{s.admin_user}@{s.vpn.host_address}"
        OdooApp(
            f"{name}-app",
            OdooAppArgs(
                client_id=s.client_id,
                # Unknown until the server exists: a first preview does not try to connect.
                docker_host=host.server_id.apply(lambda _id: docker_host),
                # Written by `pulumi up` before the provider may connect: strict host-key checking.
                ssh_opts=host_key.known_hosts.apply(
                    lambda line: strict_ssh_options(write_known_hosts(known_hosts_path(s.client_id), line))),
                host_ready=[host],
                odoo_image=ODOO_IMAGES[s.odoo_version],
                database_name=s.database_name,
                odoo_conf=render_odoo_conf(s),
                caddyfile=render_caddyfile(proxy_site(s, origin_certificate=(ORIGIN_CERT_PATH, ORIGIN_KEY_PATH))),
                # IPv4 only: with userland-proxy off, Docker 20.10 (Debian 12) forwards published IPv6
                # ports only with its experimental ip6tables; public domains get A records only.
                published_ip=["0.0.0.0"] if s.public else [str(s.vpn.host_address)],
                modules=("base", "web", *s.sso.modules),
                outside_connections=s.outside_connections,
                sso=s.sso,
                smtp_password="smtpPassword" in s.secrets_set,
                internal_tls=not s.public,
                labels=s.labels,
            ),
            opts=child,
        )
        ClientSecrets(
            f"{name}-vault",
            ClientSecretsArgs(client_id=s.client_id, host_ipv4=address.ipv4_address, boot_values=secrets.values,
                              rotation=rotation, backup_credentials=backup.current_credentials,
                              incident_topic_arn=incidents.topic_arn),
            opts=child,
        )

        self.ipv4_address = host.ipv4_address
        self.ipv6_address = host.ipv6_address
        self.private_ip = host.private_ip
        self.vpn_endpoint = host.ipv4_address.apply(lambda ip: f"{ip}:{s.vpn.port}")
        self.vpn_host_public_key = vpn_key.public_key
        self.vpn_host_address = pulumi.Output.from_input(str(s.vpn.host_address))
        self.ssh_host_public_key = host_key.public_key_openssh
        self.ssh_known_hosts = host_key.known_hosts
        self.data_volume_id = host.volume_id
        self.boot_secrets_path = pulumi.Output.concat(secrets.kv_mount, "/", secrets.kv_path)
        self.app_url = pulumi.Output.from_input(
            f"https://{s.domains[0]}/" if s.public else f"https://{internal_name(s.client_id)}/")
        self.internal_ca_cert_pem = internal_tls.ca_cert_pem if internal_tls else pulumi.Output.from_input(None)
        self.incident_topic_arn = incidents.topic_arn
        self.app_secret_values = app_secrets.values
        self.register_outputs({
            "app_url": self.app_url,
            "internal_ca_cert_pem": self.internal_ca_cert_pem,
            "incident_topic_arn": self.incident_topic_arn,
            "ipv4_address": self.ipv4_address,
            "ipv6_address": self.ipv6_address,
            "private_ip": self.private_ip,
            "vpn_endpoint": self.vpn_endpoint,
            "vpn_host_public_key": self.vpn_host_public_key,
            "vpn_host_address": self.vpn_host_address,
            "data_volume_id": self.data_volume_id,
            "ssh_host_public_key": self.ssh_host_public_key,
            "ssh_known_hosts": self.ssh_known_hosts,
            "boot_secrets_path": self.boot_secrets_path,
        })
