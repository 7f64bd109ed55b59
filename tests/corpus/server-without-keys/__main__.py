"""Generic case: a server without SSH keys (ACC-01)."""
import pulumi_hcloud as hcloud

hcloud.Server("keyless", server_type="cx23", image="debian-12", location="fsn1", labels={"client": "corpus"})
