"""Keep tests away from the user's ~/.cache/kgfuse: every test gets its own KGFUSE_HOME."""

import pytest


@pytest.fixture(autouse=True)
def _kgfuse_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path_factory.mktemp("kgfuse_home")))
