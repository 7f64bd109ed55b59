"""CD-01: how long the site is unreachable while `pulumi up` replaces each app container.

Runs one example stack's recorded app plane under Debian's Docker engine (the host of
tests/docker: network namespaces, the rendered daemon.json and nftables ruleset, local
images), sends requests through the proxy without pause (each on a new connection,
``GET /web/login``, which reads the database, as Odoo's does), and replaces each container
the way `pulumi up` would for a new image or configuration. Prints, per replaced
container, the longest gap between two successful answers and the failed requests.

Two runs:

* ``before``: every container delete-before-replace, no proxy retries (the program
  before issue 15; the recorded Caddyfile's upstreams without their retry block);
* ``now``: what the program records (its replace options, ``wait``, the Caddyfile).

Needs root and tests/system-packages.txt (docker.io, mmdebstrap, nftables). Not part of
``make test``: ``make bench-update`` (about 4 minutes; ``--stack``, ``--runs``).
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import example_settings  # noqa: E402
from tests.docker.host import AppHost, recorded_resources  # noqa: E402
from tests.system.helpers import Namespaces  # noqa: E402

ROLES = ("odoo", "proxy", "database")
UPSTREAM_BLOCK = re.compile(r"(\treverse_proxy [^\n{]+) \{\n(?:\t\t[^\n]*\n)*\t\}\n")
"""A reverse_proxy line with its block of retry settings: before issue 15 it was the line alone."""


def before_issue_15(recorded: list[dict]) -> list[dict]:
    """The recording as the program had it before: delete-before-replace everywhere, fixed
    names, no waiting, no proxy retries."""
    old = copy.deepcopy(recorded)
    for resource in old:
        if resource["type"] != "docker:index/container:Container":
            continue
        resource["options"]["deleteBeforeReplace"] = True
        inputs = resource["inputs"]
        inputs.pop("wait", None)
        inputs.pop("waitTimeout", None)
        role = next(x["value"] for x in inputs["labels"] if x["label"] == "odoo-hosting/role")
        inputs.setdefault("name", f"{resource['name'].rsplit('-app-', 1)[0]}-{role}")
        inputs["envs"] = [UPSTREAM_BLOCK.sub(r"\1\n", e) if e.startswith("CADDYFILE=") else e
                          for e in inputs["envs"]]
    return old


def run(stack: str, recorded: list[dict], label: str, log) -> list[dict]:
    netns = Namespaces()
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-update-{label}-"))
    host = AppHost(example_settings(stack), recorded, netns, workdir, log=log)
    try:
        host.start()
        host.deploy()
        host.wait_healthy(timeout=180)
        return [host.replace_under_load(role) for role in ROLES]
    finally:
        try:
            host.stop()
        finally:
            netns.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="example-public")
    parser.add_argument("--runs", type=int, default=1, help="runs of each variant (figures: median)")
    args = parser.parse_args()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    recorded = recorded_resources(args.stack)
    variants = {"before": before_issue_15(recorded), "now": recorded}
    results: dict[str, dict[str, list[dict]]] = {}
    for label, resources in variants.items():
        for n in range(args.runs):
            log(f"{label} run {n + 1}/{args.runs} ({args.stack})")
            for row in run(args.stack, resources, label, log):
                results.setdefault(label, {}).setdefault(row["role"], []).append(row)
    print(f"CD-01 update downtime, {args.stack}, {args.runs} run(s) each (median); a client requests "
          "GET /web/login through the proxy back to back")
    print(f"{'variant':8} {'replaced':9} {'longest gap (s)':>16} {'failed':>7} {'requests':>9} "
          f"{'until healthy (s)':>18}")
    for label, by_role in results.items():
        for role in ROLES:
            rows = by_role[role]
            print(f"{label:8} {role:9} {statistics.median(r['longest_gap_s'] for r in rows):16.2f} "
                  f"{statistics.median(r['failed'] for r in rows):7.0f} "
                  f"{statistics.median(r['requests'] for r in rows):9.0f} "
                  f"{statistics.median(r['healthy_after_s'] for r in rows):18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
