"""Benchmarks of taskflow against plain Dask (run ``python -m benchmarks.core``)."""
