"""Generic case: a cloud-config that leaves password SSH on (ACC-01): its
own drop-in sorts after cloud-init's 50-cloud-init.conf, which wins."""
import pulumi_hcloud as hcloud

USER_DATA = """#cloud-config
ssh_pwauth: true
write_files:
  - path: /etc/ssh/sshd_config.d/60-hardening.conf
    content: |
      PasswordAuthentication no
      PermitRootLogin no
"""
hcloud.Server("pw-server", server_type="cx23", image="debian-12", location="nbg1", ssh_keys=["ops"],
              user_data=USER_DATA, labels={"client": "corpus"})
