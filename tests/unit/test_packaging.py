"""`make demo` and `pip install` print no packaging warnings: the causes are pinned here.

setuptools warns about a `project.license` table (it wants an SPDX string) and
about a folder Python can import that `packages` does not list (a data folder
such as spec/lib included). Both are checked statically, so the test needs no
build."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_and_setuptools_knows_it() -> None:
    data = _project()
    assert isinstance(data["project"]["license"], str)
    requires = data["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in requires), requires


def test_every_importable_folder_is_a_listed_package() -> None:
    tool = _project()["tool"]["setuptools"]
    listed = set(tool["packages"])
    for package, folder in tool["package-dir"].items():
        base = ROOT / folder
        for path in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            if "__pycache__" in path.parts or not any(
                f.suffix in (".py", ".mm", ".lark", ".h") for f in path.iterdir() if f.is_file()
            ):
                continue
            dotted = ".".join([package, *path.relative_to(base).parts])
            assert dotted in listed, f"{path.relative_to(ROOT)}: not in [tool.setuptools] packages"


def test_the_pytest_plugin_entry_point() -> None:
    assert _project()["project"]["entry-points"]["pytest11"] == {
        "mmcheck": "mmcheck.checker.pytest_plugin"}


def test_the_c_headers_are_package_data_and_the_c_loader_reads_them_there() -> None:
    """A non-editable install (`pip install .`) ships include/mmcheck/*.h as the package
    data of mmcheck.include.mmcheck, and C submissions are built against that folder."""
    from fnmatch import fnmatch

    from mmcheck.checker.sandbox import cloader

    from mmcheck import include

    tool = _project()["tool"]["setuptools"]
    assert tool["package-dir"]["mmcheck.include"] == "include"
    assert {"mmcheck.include", "mmcheck.include.mmcheck"} <= set(tool["packages"])
    globs = tool["package-data"]["mmcheck.include.mmcheck"]
    headers = sorted((ROOT / "include" / "mmcheck").glob("*.h"))
    assert [h.name for h in headers] == ["buddy.h", "slab.h"]
    for h in headers:
        assert any(fnmatch(h.name, g) for g in globs), f"{h} is not package data"
    assert cloader.INCLUDE == include.DIRECTORY
    assert include.headers() == headers  # in this checkout, the package is include/
