"""System tests: the real Debian-packaged software run on what the renderers produce.

Every test in this directory is marked ``system`` (``pytest -m system`` runs them
alone). A missing tool or missing root skips a test on a developer machine and
FAILS it under CI=true (see ``tests.conftest.require_tool`` and
``helpers.require_root``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.hostconfig import render_host
from components.settings import Settings
from tests.conftest import EXAMPLE_STACKS, example_settings

from .helpers import Namespaces, materialise

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.system)


@pytest.fixture(params=EXAMPLE_STACKS, scope="session")
def settings(request) -> Settings:
    return example_settings(request.param)


@pytest.fixture(scope="session")
def public_settings() -> Settings:
    return example_settings("example-public")


@pytest.fixture(scope="session")
def private_settings() -> Settings:
    return example_settings("example-private")


@pytest.fixture(scope="session")
def _materialised(tmp_path_factory):
    """cloud-init runs once per stack; tests get their own copy (they may add files)."""
    done: dict[str, Path] = {}

    def get(settings: Settings) -> Path:
        key = settings.client_id
        if key not in done:
            done[key] = materialise(render_host(settings), tmp_path_factory.mktemp("staging") / "root")
        return done[key]
    return get


@pytest.fixture
def staging_root(tmp_path, settings, _materialised) -> Path:
    """The stack's rendered write_files, materialised by cloud-init, copied to tmp_path/root
    with modes and owners kept."""
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(_materialised(settings)), str(root)], check=True)
    return root


@pytest.fixture
def netns():
    namespaces = Namespaces()
    try:
        yield namespaces
    finally:
        namespaces.close()
