"""The compiled build's copy of the tree: what it copies, and what it refuses to replace."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from promptline.devstack.compiled import MARKER, CompileError, check_toolchain, copy_tree


def _source(root: Path) -> Path:
    source = root / "source"
    for name in ["pkg/module.py", "pyproject.toml", ".venv/bin/python", "pkg/__pycache__/m.pyc"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(name)
    (source / "pkg" / "module.cpython-311-x86_64-linux-gnu.so").write_text("stale")
    return source


def test_the_copy_has_the_sources_and_no_venv_caches_or_built_modules(tmp_path: Path) -> None:
    source = _source(tmp_path)
    copy_tree(tmp_path / "copy", source)
    copied = sorted(
        str(path.relative_to(tmp_path / "copy"))
        for path in (tmp_path / "copy").rglob("*")
        if path.is_file()
    )
    assert copied == [MARKER, "pkg/module.py", "pyproject.toml"]


def test_an_earlier_copy_is_replaced(tmp_path: Path) -> None:
    source = _source(tmp_path)
    copy_tree(tmp_path / "copy", source)
    (tmp_path / "copy" / "left-over").write_text("from the last build")
    copy_tree(tmp_path / "copy", source)
    assert not (tmp_path / "copy" / "left-over").exists()
    assert (tmp_path / "copy" / "pkg" / "module.py").exists()


@pytest.mark.parametrize("where", ["source", ".", "other"])
def test_the_tree_itself_a_folder_holding_it_or_other_files_are_never_replaced(
    tmp_path: Path, where: str
) -> None:
    source = _source(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("someone's")
    with pytest.raises(CompileError):
        copy_tree(tmp_path / where, source)
    assert (source / "pkg" / "module.py").exists()
    assert (tmp_path / "other" / "keep.txt").exists()


def test_a_missing_compiler_is_named_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig,
        "get_config_var",
        lambda name: "no-such-cc -pthread" if name == "CC" else real(name),
    )
    with pytest.raises(CompileError, match=r"a C compiler \(no-such-cc\).*build-essential"):
        check_toolchain()
