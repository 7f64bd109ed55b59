"""Generic cases: a privileged container, a host-network container, a
container mounting the Docker socket (ISO-02)."""
import pulumi_docker as docker

IMAGE = "nginx:1.27@sha256:" + "0" * 64
docker.Container("privileged", image=IMAGE, privileged=True)
docker.Container("host-network", image=IMAGE, network_mode="host")
docker.Container("socket", image=IMAGE, volumes=[
    docker.ContainerVolumeArgs(host_path="/var/run/docker.sock", container_path="/var/run/docker.sock")])
