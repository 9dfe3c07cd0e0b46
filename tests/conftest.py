"""Fixtures shared by several test modules."""

import pytest


@pytest.fixture(scope="session")
def textures_root(tmp_path_factory):
    """The bundled texture categories (brick, coin), written once per test session."""
    from srlib.data import make_textures

    return make_textures(tmp_path_factory.mktemp("bundled") / "textures", seed=0)
