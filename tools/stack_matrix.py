"""The deploy workflow's stack matrix, computed from the ``Pulumi.<stack>.yaml`` files.

``python tools/stack_matrix.py [--root DIR]`` prints one JSON object for
GitHub's ``fromJSON``: ``{"include": [{"stack", "client", "deployer",
"secret"}...], "skipped": [{"stack", "reason"}...]}``. A stack can be deployed
by the workflow when its settings parse and its ``vpn.peers`` has the
:data:`DEPLOYER_PEER` entry (and a matching ``sshKeys`` entry): the runner
joins the client's VPN as that peer. ``secret`` is the suffix of the CI
secrets holding that peer's WireGuard and SSH private keys
(``WG_DEPLOYER_<secret>``, ``SSH_DEPLOYER_<secret>``). A stack whose settings
do not parse is an error (exit 1): a typo never drops a client silently.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.settings import SettingsError, parse_settings  # noqa: E402

DEPLOYER_PEER = "ci-deployer"
STACK_FILE = re.compile(r"^Pulumi\.([A-Za-z0-9][A-Za-z0-9_.-]*)\.yaml$")
NAMESPACE = "odoo-hosting:"


def secret_suffix(stack: str) -> str:
    """``example-public`` -> ``EXAMPLE_PUBLIC`` (GitHub secret names: letters, digits, underscores)."""
    return re.sub(r"[^A-Z0-9]", "_", stack.upper())


def stack_files(root: Path) -> list[tuple[str, Path]]:
    found = [(m.group(1), p) for p in root.iterdir() if (m := STACK_FILE.match(p.name))]
    return sorted(found)


def _raw_settings(path: Path) -> dict[str, Any]:
    config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    # Secrets (`secure:` values) are not needed for the matrix: the encrypted blobs pass as they are.
    return {k[len(NAMESPACE):]: v for k, v in config.items() if k.startswith(NAMESPACE)}


def matrix(root: Path) -> dict[str, list[dict[str, str]]]:
    include: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    errors: list[str] = []
    for stack, path in stack_files(root):
        try:
            settings = parse_settings(_raw_settings(path))
        except SettingsError as error:
            errors.append(f"{path.name}: {error}")
            continue
        peers = {p.name for p in settings.vpn.peers}
        keys = {k.name for k in settings.ssh_keys}
        if DEPLOYER_PEER not in peers or DEPLOYER_PEER not in keys:
            missing = [what for what, names in (("vpn.peers", peers), ("sshKeys", keys)) if DEPLOYER_PEER not in names]
            skipped.append({"stack": stack, "reason": f"no {DEPLOYER_PEER!r} entry in {' and '.join(missing)}"})
            continue
        include.append({"stack": stack, "client": settings.client_id, "deployer": DEPLOYER_PEER,
                        "secret": secret_suffix(stack)})
    if errors:
        raise SystemExit("stack_matrix: " + "; ".join(errors))
    return {"include": include, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/stack_matrix.py")
    parser.add_argument("--root", type=Path, default=ROOT, help="directory holding the Pulumi.<stack>.yaml files")
    args = parser.parse_args(argv)
    result = matrix(args.root)
    if not result["include"]:
        print("stack_matrix: no stack can be deployed (see skipped)", file=sys.stderr)
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
