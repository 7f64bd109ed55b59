"""Fleet roll-outs: ``python -m fleet preview|up [--stacks ...] [--parallel N] [--canary K]``.

Canary stacks first, one at a time; then the rest at most N at a time; no
new stack starts after the first failure; progress per stack on stderr; a
JSON and a Markdown summary. Each stack runs through the Pulumi Automation
API (:class:`~fleet.rollout.AutomationRunner`, which needs the Pulumi CLI and
the stacks' backend credentials) with the policy pack; the ordering and
stopping logic (:func:`~fleet.rollout.roll_out`) takes any runner.
"""

from .rollout import AutomationRunner, RolloutSummary, StackResult, StackRunner, roll_out

__all__ = ["AutomationRunner", "RolloutSummary", "StackResult", "StackRunner", "roll_out"]
