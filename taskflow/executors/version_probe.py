"""What a worker reports for the version check: its Python and distribution versions.

This module imports only the standard library, and it is pickled **by value**
(:func:`cloudpickle.register_pickle_by_value`), so :func:`versions` runs on a
worker through ``Client.run`` even where taskflow is not installed (the check
must be able to say so).  The client and the workers answer with the same
function, from the same source: distribution metadata
(:func:`importlib.metadata.version`) on both sides, on every version of
distributed (whose own ``get_versions(packages=...)`` looks packages up by
import name on some versions and by distribution name on others).

Examples
--------
>>> v = versions(["dask", "no-such-distribution"])
>>> sorted(v), v["no-such-distribution"]
(['dask', 'no-such-distribution', 'python'], None)
"""
from __future__ import annotations

__all__ = ["versions"]


def versions(distributions: list[str]) -> dict[str, str | None]:
    """``{"python": "3.11.7", dist: version or None, ...}`` in this process."""
    import importlib.metadata
    import sys

    out: dict[str, str | None] = {"python": ".".join(str(p) for p in sys.version_info[:3])}
    for dist in distributions:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out
