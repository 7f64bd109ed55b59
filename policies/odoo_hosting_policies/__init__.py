"""The odoo-hosting CrossGuard policies, one module per area.

``ALL_POLICIES`` is the explicit list the pack runs; importing a module
registers nothing by itself.
"""

from .backupagent import hcloud_server_backup_agent
from .buckets import s3_bucket_hardening_complete, s3_bucket_settings
from .containers import docker_container_isolated, docker_image_pinned
from .firewall import (
    hcloud_firewall_public_ingress,
    hcloud_server_firewall_attached,
    hcloud_vpn_only_server_firewalls,
)
from .hostbundle import hcloud_server_host_bundle
from .hostsoftware import hcloud_server_fail2ban, hcloud_server_unattended_upgrades
from .iam import iam_policy_least_privilege
from .labels import aws_client_tag, hcloud_client_label, pulumi_stack_single_client
from .location import aws_provider_eu_region, aws_resource_eu_region, hcloud_eu_location
from .protection import kms_key_protected, kms_key_rotation, s3_bucket_protected, vault_mount_protected
from .ssh import hcloud_server_ssh_keys, hcloud_server_sshd_key_only
from .tlskeys import tls_cert_validity, tls_private_key_strength
from .vault import vault_approle_bound, vault_emergency_seal_and_audit, vault_policy_client_scoped
from .volume import (
    hcloud_server_protection_consistent,
    hcloud_volume_no_provider_format,
    hcloud_volume_protected,
)

ALL_POLICIES = [
    # RES-01 / BKP-02
    hcloud_eu_location,
    aws_provider_eu_region,
    aws_resource_eu_region,
    # ACC-01
    hcloud_server_ssh_keys,
    hcloud_server_sshd_key_only,
    # ACC-02 / TLS-02
    hcloud_firewall_public_ingress,
    hcloud_server_firewall_attached,
    hcloud_vpn_only_server_firewalls,
    # ACC-04
    hcloud_server_fail2ban,
    # SWU-01
    hcloud_server_unattended_upgrades,
    docker_image_pinned,
    # DSK-01
    hcloud_volume_no_provider_format,
    # REL-01
    hcloud_volume_protected,
    hcloud_server_protection_consistent,
    s3_bucket_protected,
    kms_key_protected,
    vault_mount_protected,
    # BKP-01 / BKP-02 / BKP-03 / INC-01 (the agent on the host)
    hcloud_server_backup_agent,
    # ACC-01 / ACC-02 / ACC-04 / SWU-01 / BKP-01: the host bundle those host files come in
    hcloud_server_host_bundle,
    # BKP-04
    s3_bucket_settings,
    s3_bucket_hardening_complete,
    kms_key_rotation,
    # BKP-05
    iam_policy_least_privilege,
    # ISO-01
    hcloud_client_label,
    aws_client_tag,
    pulumi_stack_single_client,
    # ISO-02
    docker_container_isolated,
    # TLS-04
    tls_private_key_strength,
    tls_cert_validity,
    # SEC-02 / SEC-03
    vault_policy_client_scoped,
    vault_approle_bound,
    vault_emergency_seal_and_audit,
]

# The app plane: TLS proxy config (TLS-01), odoo.conf (ACC-03), outside connections (TLS-03, advisory).
from .connections import odoo_outside_connections_tls, odoo_sso_ldap_tls  # noqa: E402
from .odoo_conf import odoo_conf_hardened  # noqa: E402
from .proxy import caddy_proxy_https_only  # noqa: E402

ALL_POLICIES += [caddy_proxy_https_only, odoo_conf_hardened, odoo_outside_connections_tls, odoo_sso_ldap_tls]

# The baseline's other routes to the same effects (any program): ports opened by security groups and
# load balancers (ACC-02), RDS and EBS at rest (DSK-01), IAM through managed admin policies (BKP-05),
# passwords in user-data (SEC-01), KMS key policies (BKP-05).
from .buckets import s3_bucket_key_owner  # noqa: E402
from .exposure import aws_security_group_no_admin_ingress, hcloud_load_balancer_no_admin_service  # noqa: E402
from .iam import iam_no_admin_managed_policy, kms_key_policy_least_privilege  # noqa: E402
from .storage import aws_ebs_encrypted, aws_rds_encrypted, aws_rds_not_public  # noqa: E402
from .tlskeys import vault_pki_role_floor  # noqa: E402
from .userdata import server_user_data_no_plaintext_password  # noqa: E402
from .vault import vault_role_least_privilege  # noqa: E402

ALL_POLICIES += [aws_security_group_no_admin_ingress, hcloud_load_balancer_no_admin_service, aws_rds_not_public,
                 aws_rds_encrypted,
                 aws_ebs_encrypted, iam_no_admin_managed_policy, kms_key_policy_least_privilege,
                 server_user_data_no_plaintext_password,
                 vault_role_least_privilege, s3_bucket_key_owner, vault_pki_role_floor]

__all__ = ["ALL_POLICIES"]
