"""Transforms: a stack transform protects volumes and labels everything; a resource's own
transform opens SSH to the world (the pack must see the rule the engine would create)."""

import pulumi
import pulumi_hcloud as hcloud


def protect_and_label(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    props = dict(args.props)
    if args.type_.startswith("hcloud:") and args.custom:
        props["labels"] = {**(props.get("labels") or {}), "managed-by": "transforms"}
    opts = args.opts
    if args.type_ == "hcloud:index/volume:Volume":
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True))
    return pulumi.ResourceTransformResult(props=props, opts=opts)


def open_ssh(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    rules = [{**rule, "sourceIps": ["0.0.0.0/0"]} if rule.get("port") == "22" else rule
             for rule in args.props["rules"]]
    return pulumi.ResourceTransformResult(props={**args.props, "rules": rules}, opts=args.opts)


pulumi.runtime.register_resource_transform(protect_and_label)
hcloud.Volume("data", size=10, location="fsn1")
hcloud.Firewall(
    "ssh",
    rules=[hcloud.FirewallRuleArgs(direction="in", protocol="tcp", port="22", source_ips=["192.0.2.10/32"])],
    opts=pulumi.ResourceOptions(transforms=[open_ssh]),
)


def tier(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if not args.custom:
        return None
    return pulumi.ResourceTransformResult(props={**args.props, "labels": {**(args.props.get("labels") or {}),
                                                                           "tier": "backend"}}, opts=args.opts)


class Backend(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("acme:index:Backend", name, None, opts)
        hcloud.Network(f"{name}-net", ip_range="10.0.0.0/16", opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


# A component's transforms apply to its children, before the stack's.
Backend("backend", opts=pulumi.ResourceOptions(transforms=[tier]))


# Stack invoke transforms (register_invoke_transform) rewrite every invoke's arguments before
# the provider answers it, in the order registered: each sees the previous one's result.
def newer_image(args: pulumi.InvokeTransformArgs) -> pulumi.InvokeTransformResult | None:
    if args.token != "hcloud:index/getImage:getImage":
        return None
    return pulumi.InvokeTransformResult(args={**args.args, "name": args.args["name"].replace("-12", "-13")},
                                        opts=args.opts)


def arm_image(args: pulumi.InvokeTransformArgs) -> pulumi.InvokeTransformResult | None:
    if args.token == "hcloud:index/getImage:getImage" and args.args["name"] == "debian-13":
        return pulumi.InvokeTransformResult(args={**args.args, "name": "debian-13-arm"}, opts=args.opts)
    return None


pulumi.runtime.register_invoke_transform(newer_image)
pulumi.runtime.register_invoke_transform(arm_image)
image = hcloud.get_image(name="debian-12")
location = hcloud.get_location_output(name="nbg1")
hcloud.Server("web", server_type="cax11", image=image.name, location=location.name)
