"""A copy of the source tree with resolve's hot path compiled, as a release build has it.

A release build (``HATCH_BUILD_HOOKS_ENABLE=1``: the Dockerfile) compiles the modules of
``promptline.build.HOT_PATH_MODULES`` with mypyc. The build hook leaves the extension
modules beside the sources; in the working tree the editable install would then import
them instead of the ``.py`` files being edited, so the compiled build is made in a copy.
``make test-compiled`` runs the hot path's tests in that copy (Python imports an extension
module before a ``.py`` of the same name), and ``bench.resolve_http`` serves from it.

Run: ``python -m promptline.devstack.compiled DEST`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".promptline",
    "__pycache__",
    "*.so",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "*.egg-info",
)


class CompileError(RuntimeError):
    """The compiled build failed, or its hot path still imports as Python."""


def copy_tree(dest: Path, source: Path = ROOT) -> None:
    """``source``'s project files (no venv, caches or build output) into a fresh ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=_NOT_COPIED)


def compile_tree(tree: Path) -> Path:
    """Build the release wheel in ``tree`` (leaving the extension modules in place).

    Uses this interpreter's environment (``--no-build-isolation``): the dev extra has the
    build hook, mypy and the runtime dependencies mypyc type-checks against.
    """
    dist = tree / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--wheel-dir", str(dist), str(tree)]
    built = subprocess.run(
        command,
        cwd=tree,
        env={**os.environ, "HATCH_BUILD_HOOKS_ENABLE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise CompileError(f"the compiled build failed:\n{built.stdout}{built.stderr}")
    return next(dist.glob("*.whl"))


def check_compiled(tree: Path) -> str:
    """What ``tree``'s hot path imports as: raises unless every module is compiled."""
    probe = "from promptline.build import hot_path_build; print(hot_path_build())"
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=tree, capture_output=True, text=True, check=False
    )
    build = found.stdout.strip()
    if found.returncode != 0 or build != "compiled":
        raise CompileError(f"the hot path in {tree} is not compiled: {build}{found.stderr}")
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="where the compiled copy goes (replaced)")
    args = parser.parse_args()
    dest = args.dest.resolve()
    copy_tree(dest)
    wheel = compile_tree(dest)
    check_compiled(dest)
    print(f"compiled copy: {dest} (wheel: {wheel.name})")


if __name__ == "__main__":
    main()
