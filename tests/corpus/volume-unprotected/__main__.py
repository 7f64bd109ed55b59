"""Generic case: a data volume without delete protection (REL-01)."""
import pulumi_hcloud as hcloud

hcloud.Volume("unprotected", size=10, location="fsn1", labels={"client": "corpus"})
