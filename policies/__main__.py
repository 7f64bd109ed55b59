"""The odoo-hosting policy pack: every policy mandatory, listed explicitly."""

import gc

from pulumi_policy import EnforcementLevel, PolicyPack

from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._servicer import fast_servicer_enabled, install

# Under `pulumi preview` the pack serves with pulumi_policy as published. When
# preflight starts it (its fleet runs), a servicer with the same protocol and
# answers (but for the engine's secret marks, see _servicer.secret_inputs) does
# the per-resource conversions once per resource instead of once per policy,
# if the installed pulumi_policy is the one it was checked against.
if fast_servicer_enabled():
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
