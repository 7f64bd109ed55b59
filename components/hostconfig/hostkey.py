"""The SSH host key on the host: fetched from Vault, the only key sshd offers (ACC-01).

``odoo-hosting-hostkey`` (in the bundle, so no user-data byte) asks the fetcher
for the Pulumi-made Ed25519 key (:mod:`components.hostkeys`), checks it with
``ssh-keygen -y``, installs it as :data:`~.paths.SSH_HOST_KEY_PATH` (0600, via
a temporary file in the same directory and a rename), deletes every other
``ssh_host_*_key`` cloud-init or the package generated, and restarts sshd when
anything changed. Its unit runs at every boot after the bundle; when Vault is
unreachable it fails and retries, and sshd keeps the key already on disk.
"""

from __future__ import annotations

from .paths import (
    BUNDLE_UNIT_NAME,
    HOSTKEY_SCRIPT_PATH,
    SECRET_FETCH_PATH,
    SECRET_NAME_SSH_HOST_KEY,
    SSH_HOST_KEY_PATH,
    WIREGUARD_INTERFACE,
)


def render_hostkey_script(*, ssh_dir: str = "/etc/ssh", fetch: str = SECRET_FETCH_PATH,
                          restart: str = "systemctl reload-or-restart ssh.service") -> str:
    """``ssh_dir``, ``fetch`` and ``restart`` are overridden by tests only."""
    key = f"{ssh_dir}/{SSH_HOST_KEY_PATH.rsplit('/', 1)[1]}"
    return f"""\
#!/bin/sh
# {HOSTKEY_SCRIPT_PATH}: managed by odoo-hosting. Installs the Pulumi-made SSH
# host key from Vault and removes every other host key (no trust on first use).
set -eu
umask 077
key={key}
new=$(mktemp {ssh_dir}/.odoo-hosting-hostkey.XXXXXX)
trap 'rm -f "$new" "$new.pub"' EXIT
{fetch} {SECRET_NAME_SSH_HOST_KEY} > "$new"
# A key ssh-keygen cannot read would leave sshd without a key: keep the old one.
ssh-keygen -y -f "$new" > "$new.pub" || {{ echo "odoo-hosting-hostkey: the key from Vault is not valid" >&2; exit 1; }}
case $(cut -d' ' -f1 "$new.pub") in
  ssh-ed25519) ;;
  *) echo "odoo-hosting-hostkey: not an Ed25519 key" >&2; exit 1;;
esac
changed=no
if ! cmp -s "$new" "$key" || ! cmp -s "$new.pub" "$key.pub"; then
  chmod 0644 "$new.pub"
  mv -f "$new.pub" "$key.pub"
  mv -f "$new" "$key"
  changed=yes
fi
for other in {ssh_dir}/ssh_host_*_key {ssh_dir}/ssh_host_*_key.pub; do
  case $other in "$key"|"$key.pub") continue;; esac
  if [ -e "$other" ]; then rm -f "$other"; changed=yes; fi
done
if [ $changed = yes ]; then
  {restart}
  echo "odoo-hosting-hostkey: installed $(ssh-keygen -l -f "$key.pub" | cut -d' ' -f2); other host keys removed" >&2
fi
"""


def render_hostkey_unit() -> str:
    return f"""\
# managed by odoo-hosting: the Pulumi-made SSH host key from Vault, at every boot
[Unit]
Description=odoo-hosting SSH host key
Wants=network-online.target
After=network-online.target {BUNDLE_UNIT_NAME}
# SSH is reachable only through WireGuard: the tunnel comes up once sshd has the right key.
Before=wg-quick@{WIREGUARD_INTERFACE}.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={HOSTKEY_SCRIPT_PATH}
Restart=on-failure
RestartSec=20
StandardError=journal+console
[Install]
WantedBy=multi-user.target
"""
