"""Session-wide fixture trees for the dataset adapter tests (generated once, into tmp dirs)."""

from pathlib import Path

import pytest

from . import fixtures


def _make(tmp_path_factory, name, **kw):
    root = tmp_path_factory.mktemp(name)
    return fixtures.MAKERS[name](root, **kw)


@pytest.fixture(scope="session")
def casme2_tree(tmp_path_factory):
    return _make(tmp_path_factory, "casme2")


@pytest.fixture(scope="session")
def casme2_cropped_tree(tmp_path_factory):
    return _make(tmp_path_factory, "casme2", layout="cropped")


@pytest.fixture(scope="session")
def samm_tree(tmp_path_factory):
    return _make(tmp_path_factory, "samm")


@pytest.fixture(scope="session")
def smic_tree(tmp_path_factory):
    return _make(tmp_path_factory, "smic")


@pytest.fixture(scope="session")
def smic_e_tree(tmp_path_factory):
    return _make(tmp_path_factory, "smic-e")


@pytest.fixture(scope="session")
def casme3_tree(tmp_path_factory):
    return _make(tmp_path_factory, "casme3")


@pytest.fixture(scope="session")
def mmew_tree(tmp_path_factory):
    return _make(tmp_path_factory, "mmew")


ANNOTATIONS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "annotations"


@pytest.fixture(scope="session")
def annotations() -> Path:
    """The real published annotation sheets (tests only; a user's install has no ../shared)."""
    if not ANNOTATIONS.is_dir():
        pytest.skip(f"real annotation sheets not found at {ANNOTATIONS}")
    return ANNOTATIONS
