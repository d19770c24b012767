"""Which build runs: the modules the release build compiles, and the check that tells."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from promptline import build

ROOT = Path(__file__).resolve().parents[2]


def test_the_build_hook_compiles_exactly_the_hot_path_modules() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    modules = {
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for path in hook["include"]
    }
    assert modules == set(build.HOT_PATH_MODULES)
    assert hook["enable-by-default"] is False  # editable installs stay pure Python


def test_an_extension_module_is_told_from_a_python_one() -> None:
    assert build.is_compiled("mmh3")  # a C extension
    assert not build.is_compiled("json")


def test_the_hot_path_is_compiled_exactly_in_the_compiled_build() -> None:
    # make test-compiled sets the variable in its compiled copy. Anywhere else, compiled
    # modules would be stale ones left beside the sources by a build, shadowing the .py
    # files being edited: delete them (find . -name '*.so' -not -path './.venv/*').
    expected = "compiled" if os.environ.get("PROMPTLINE_EXPECT_COMPILED") == "1" else "pure Python"
    assert build.hot_path_build() == expected


def test_a_partly_compiled_build_names_its_python_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    python_ones = {"controlplane.resolve.engine", "ingest.observe"}
    monkeypatch.setattr(build, "is_compiled", lambda name: name not in python_ones)
    described = build.hot_path_build()
    assert described.startswith("partly compiled (pure Python: ")
    assert "controlplane.resolve.engine" in described
    assert "ingest.observe" in described
    assert "controlplane.resolve.hashing" not in described
