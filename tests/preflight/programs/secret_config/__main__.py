"""Every typed config getter, on secrets whose values preflight cannot know."""

import pulumi
import pulumi_hcloud as hcloud

config = pulumi.Config()
database = config.require_secret_object("database")
smtp = config.require_secret_object("smtp")
replicas = config.require_secret_int("replicas")
debug = config.get_secret_bool("debug")
ratio = config.get_secret_float("ratio")
sizes = config.require_object("sizes")

hcloud.Volume("data", size=sizes["small"], location="fsn1", labels={
    "db-user": database.apply(lambda d: d["user"]),
    "smtp-host": smtp.apply(lambda s: s["host"]),
    "smtp-password": smtp.apply(lambda s: s["password"]),
    "replicas": replicas.apply(str),
    "debug": debug.apply(str),
    "ratio": ratio.apply(str),
})
