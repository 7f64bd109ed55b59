"""The odoo-hosting policy pack: every policy mandatory, listed explicitly."""

from pulumi_policy import EnforcementLevel, PolicyPack

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._servicer import install

# Same protocol and answers as pulumi_policy's servicer; the per-resource
# conversions are done once per resource instead of once per policy.
install()

PolicyPack(
    name="odoo-hosting",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
