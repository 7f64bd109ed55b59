"""The app plane under Debian's Docker engine (issue 15): one host per example stack.

Marked ``system`` and ``slow``. Needs root (network namespaces, dockerd) and the Debian
packages docker.io, mmdebstrap, nftables, fail2ban; without them the tests skip, and under
CI=true they fail. The images are built once per machine (cached, see ``images.py``) and
the host of each stack once per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_STACKS, example_settings, require_tool
from tests.system.helpers import Namespaces, require_root

from .host import AppHost, recorded_resources

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.system)
            item.add_marker(pytest.mark.slow)


def require_engine() -> None:
    require_root()
    for tool in ("dockerd", "containerd", "runc", "mmdebstrap", "nft", "nsenter", "unshare", "fail2ban-server"):
        require_tool(tool)


@pytest.fixture(scope="session", params=EXAMPLE_STACKS)
def app_host(request, tmp_path_factory) -> Iterator[AppHost]:
    """The stack's recorded app plane running, every container healthy."""
    require_engine()
    stack = request.param
    netns = Namespaces()
    host = AppHost(example_settings(stack), recorded_resources(stack), netns, tmp_path_factory.mktemp(stack))
    try:
        host.start()
        host.deploy()
        host.wait_healthy()
        yield host
    finally:
        try:
            host.stop()
        finally:
            netns.close()
