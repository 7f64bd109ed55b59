"""odoo-hosting organisation stack: the Vault pieces shared by every client (SEC-03, INC-01).

Deploy once, before any client stack: ``cd organisation && pulumi up``.
The Vault token comes from VAULT_TOKEN in the environment (never config).
"""

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.secrets import VaultOrganisation, VaultOrganisationArgs  # noqa: E402

config = pulumi.Config()
organisation = VaultOrganisation("odoo-hosting", VaultOrganisationArgs(
    audit_log_path=config.get("auditLogPath") or "/var/log/vault/audit.log",
    emergency_operator_entity_ids=config.get_object("emergencyOperatorEntityIds") or [],
))
pulumi.export("kvMount", organisation.kv_mount)
pulumi.export("approleBackend", organisation.approle_backend)
