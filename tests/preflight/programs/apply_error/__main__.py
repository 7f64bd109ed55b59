import pulumi_hcloud as hcloud
from naming import label_for

net = hcloud.Network("net", ip_range="10.0.0.0/16", name="core")
hcloud.Network("other", ip_range="10.1.0.0/16", labels={"peer": net.name.apply(label_for)})
