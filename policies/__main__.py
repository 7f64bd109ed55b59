"""The odoo-hosting policy pack: every policy mandatory, listed explicitly."""

import gc

from pulumi_policy import EnforcementLevel, PolicyPack

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._servicer import install

# Same protocol and answers as pulumi_policy's servicer; the per-resource
# conversions are done once per resource instead of once per policy.
install()

# The pack's modules live as long as the process: keep the garbage
# collector's full collections from walking them after every few requests.
gc.collect()
gc.freeze()

PolicyPack(
    name="odoo-hosting",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
