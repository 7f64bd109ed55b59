"""Generic case: a volume the provider formats or automounts (DSK-01)."""
import pulumi
import pulumi_hcloud as hcloud

hcloud.Volume("auto", size=10, location="fsn1", format="xfs", automount=True, delete_protection=True,
              labels={"client": "corpus"}, opts=pulumi.ResourceOptions(protect=True))
