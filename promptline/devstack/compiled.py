"""A copy of the source tree with resolve's hot path compiled, as a release build has it.

A release build (``HATCH_BUILD_HOOK_ENABLE_MYPYC=1``: the Dockerfile) compiles the modules of
``promptline.build.HOT_PATH_MODULES`` with mypyc. The build hook leaves the extension
modules beside the sources; in the working tree the editable install would then import
them instead of the ``.py`` files being edited, so the compiled build is made in a copy.
``make test-compiled`` runs the hot path's tests in that copy (Python imports an extension
module before a ``.py`` of the same name), and ``bench.resolve_http`` serves from it.

Run: ``python -m promptline.devstack.compiled DEST [--wheel-to DIR]`` (about a minute;
``make wheel`` puts the release wheel in ``dist/`` this way). Needs a C compiler and
Python's headers (Debian: ``build-essential`` and ``python3-dev``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = ".promptline-compiled-copy"
"""Marks a folder as one of these copies, which ``copy_tree`` may replace."""
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
    """``source``'s project files (no venv, caches or build output) into ``dest``.

    ``dest`` is replaced only if it is missing, empty or an earlier copy: never the tree
    itself, a folder holding it, or a folder of anything else.
    """
    dest, source = dest.resolve(), source.resolve()
    if dest == source or dest in source.parents:
        raise CompileError(f"{dest} holds the source tree; the copy goes elsewhere")
    if dest.exists() and any(dest.iterdir()) and not (dest / MARKER).exists():
        raise CompileError(f"{dest} is not empty and not an earlier compiled copy")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=_NOT_COPIED)
    (dest / MARKER).write_text("a compiled copy of the tree; replaced by the next build\n")


def check_toolchain() -> None:
    """Raise, saying what to install, unless a C compiler and Python's headers are here."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    missing = [] if shutil.which(compiler) else [f"a C compiler ({compiler})"]
    if not headers.exists():
        missing.append(f"Python's headers ({headers})")
    if missing:
        raise CompileError(
            "the compiled build needs "
            + " and ".join(missing)
            + "; on Debian: apt-get install build-essential python3-dev"
        )


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
        env={**os.environ, "HATCH_BUILD_HOOK_ENABLE_MYPYC": "1"},
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


def compiled_copy(dest: Path) -> Path:
    """The whole build: toolchain checked, ``dest`` a fresh copy, compiled and checked.

    Returns the release wheel built there; raises :class:`CompileError`.
    """
    check_toolchain()
    copy_tree(dest)
    wheel = compile_tree(dest)
    check_compiled(dest)
    return wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="where the compiled copy goes (replaced)")
    parser.add_argument("--wheel-to", type=Path, help="also copy the release wheel here")
    args = parser.parse_args()
    dest = args.dest.resolve()
    try:
        wheel = compiled_copy(dest)
    except CompileError as error:
        sys.exit(f"promptline.devstack.compiled: {error}")
    print(f"compiled copy: {dest} (wheel: {wheel.name})")
    if args.wheel_to is not None:
        args.wheel_to.mkdir(parents=True, exist_ok=True)
        print(f"release wheel: {shutil.copy2(wheel, args.wheel_to)}")


if __name__ == "__main__":
    main()
