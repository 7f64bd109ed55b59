"""The odoo-hosting policy pack: every policy mandatory, listed explicitly."""

from pulumi_policy import EnforcementLevel, PolicyPack

from odoo_hosting_policies import ALL_POLICIES

PolicyPack(
    name="odoo-hosting",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
