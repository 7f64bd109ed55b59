"""The deploy runner's way into one client: its WireGuard config as the ``ci-deployer`` peer and the
pinned ``known_hosts``, both from the stack's outputs (never from the network).

``pulumi stack output --json --stack S > outputs.json`` then
``DEPLOYER_WG_PRIVATE_KEY=... python tools/ci_vpn.py --stack S --outputs outputs.json --wg-config FILE``
writes ``FILE`` (0600; ``wg-quick up FILE`` brings the tunnel up) and the known_hosts file the Docker
provider trusts (:func:`components.hostkeys.known_hosts_path`). Exits 1, naming what is missing,
when the stack has not been deployed yet (no endpoint or host key outputs): a client's first
``pulumi up`` is an operator's (README: first deployment). The private key never appears in output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.hostkeys import known_hosts_path, write_known_hosts  # noqa: E402
from tools.stack_matrix import DEPLOYER_PEER, _raw_settings  # noqa: E402

REQUIRED_OUTPUTS = ("vpnEndpoint", "vpnHostPublicKey", "vpnHostAddress", "sshKnownHosts")
PRIVATE_KEY_ENV = "DEPLOYER_WG_PRIVATE_KEY"


class NotDeployable(Exception):
    pass


def render_deployer_config(raw: dict[str, Any], outputs: dict[str, Any], private_key: str) -> str:
    from components.settings import parse_settings

    settings = parse_settings(raw)
    missing = [k for k in REQUIRED_OUTPUTS if not outputs.get(k)]
    if missing:
        raise NotDeployable(f"the stack has no {', '.join(missing)} output yet: run its first `pulumi up` "
                            "as an operator (README: first deployment)")
    peer = next((p for p in settings.vpn.peers if p.name == DEPLOYER_PEER), None)
    if peer is None:
        raise NotDeployable(f"no {DEPLOYER_PEER!r} entry in vpn.peers")
    if not private_key.strip():
        raise NotDeployable(f"{PRIVATE_KEY_ENV} is empty (the CI secret is missing)")
    return "\n".join([
        f"# {DEPLOYER_PEER} of {settings.client_id}: written by tools/ci_vpn.py from the stack outputs",
        "[Interface]",
        f"PrivateKey = {private_key.strip()}",
        f"Address = {peer.address}/32",
        "",
        "[Peer]",
        f"PublicKey = {outputs['vpnHostPublicKey']}",
        f"Endpoint = {outputs['vpnEndpoint']}",
        f"AllowedIPs = {outputs['vpnHostAddress']}/32",
        "PersistentKeepalive = 25",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/ci_vpn.py")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--outputs", type=Path, required=True, help="`pulumi stack output --json`")
    parser.add_argument("--wg-config", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    raw = _raw_settings(args.root / f"Pulumi.{args.stack}.yaml")
    outputs = json.loads(args.outputs.read_text(encoding="utf-8"))
    try:
        config = render_deployer_config(raw, outputs, os.environ.get(PRIVATE_KEY_ENV, ""))
    except NotDeployable as error:
        print(f"ci_vpn: {args.stack}: {error}", file=sys.stderr)
        return 1
    args.wg_config.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(args.wg_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="ascii") as f:
        f.write(config)
    path = known_hosts_path(str(raw["clientId"]))
    write_known_hosts(path, str(outputs["sshKnownHosts"]))
    print(f"ci_vpn: {args.stack}: tunnel config {args.wg_config}, host key pinned in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
