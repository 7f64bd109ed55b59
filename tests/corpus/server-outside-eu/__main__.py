"""Generic case: a server in a non-EU location (RES-01)."""
import pulumi_hcloud as hcloud

hcloud.Server("us-server", server_type="cpx21", image="debian-12", location="ash", labels={"client": "corpus"})
