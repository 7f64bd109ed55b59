#!/bin/bash
# join-vpn.sh STACK: the runner becomes the client's ci-deployer WireGuard peer and trusts only the
# host key in the stack outputs. Needs: the Pulumi CLI logged in, DEPLOYER_WG_PRIVATE_KEY and
# DEPLOYER_SSH_KEY (CI secrets), ODOO_HOSTING_KNOWN_HOSTS_DIR. Never prints a key.
set -euo pipefail
stack=$1
conf="$RUNNER_TEMP/odoo-deployer.conf"
command -v wg-quick >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq wireguard-tools >/dev/null; }
command -v pulumi >/dev/null || { curl -fsSL https://get.pulumi.com | sh >/dev/null && export PATH="$HOME/.pulumi/bin:$PATH"; }
pulumi stack output --json --stack "$stack" > "$RUNNER_TEMP/outputs.json"
.venv/bin/python tools/ci_vpn.py --stack "$stack" --outputs "$RUNNER_TEMP/outputs.json" --wg-config "$conf"
sudo wg-quick up "$conf"
# The Docker provider's ssh uses the agent: the deployer's key, never on disk.
eval "$(ssh-agent -s)" >/dev/null
ssh-add - <<<"$DEPLOYER_SSH_KEY" 2>/dev/null
{ echo "SSH_AUTH_SOCK=$SSH_AUTH_SOCK"; echo "SSH_AGENT_PID=$SSH_AGENT_PID"; } >> "$GITHUB_ENV"
# Proves the path before Pulumi needs it: the pinned key or nothing.
admin=$(.venv/bin/python -c 'import sys,yaml; c=yaml.safe_load(open(sys.argv[1]))["config"]; print(c.get("odoo-hosting:adminUser","ops"))' "Pulumi.$stack.yaml")
host=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["vpnHostAddress"])' "$RUNNER_TEMP/outputs.json")
client=$(.venv/bin/python -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["config"]["odoo-hosting:clientId"])' "Pulumi.$stack.yaml")
ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$ODOO_HOSTING_KNOWN_HOSTS_DIR/$client.known_hosts" \
    -o ConnectTimeout=30 "$admin@$host" true
echo "joined the VPN of $stack; $host presents the pinned host key"
