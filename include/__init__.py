"""The contract's C headers (include/mmcheck/buddy.h, slab.h), shipped with mmcheck.

A C submission is built with `-I` this folder, so that `#include <mmcheck/slab.h>`
finds the headers in a checkout and in an installed mmcheck alike (they are the
package data of `mmcheck.include`, pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent


def headers() -> list[Path]:
    """Every header a C submission may include, in a fixed order."""
    return sorted(DIRECTORY.rglob("*.h"))
