"""Find a flow from the command line: ``path/to/file.py:flow_name`` or ``package.module:flow``.

A file inside a package that is on ``sys.path`` is imported under its dotted
name, so Dask workers import it by reference like any installed code.  Any
other file is loaded as a module of its own (its ``if __name__ == "__main__":``
block does not run, its folder goes on ``sys.path`` for its sibling imports) and
registered with cloudpickle to be *pickled by value*: workers receive its tasks'
code and need no copy of the file.

Every failure is a :class:`FlowNotFoundError` whose message names the thing
that is wrong and how to fix it.

Examples
--------
>>> split_target("flows/etl.py:etl")
('flows/etl.py', 'etl')
>>> split_target("flows/etl.py")
('flows/etl.py', None)
>>> f = load_flow("tests.flows:etl")            # doctest: +SKIP
>>> f.name                                      # doctest: +SKIP
'etl'
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Any

from taskflow.exceptions import TaskflowError
from taskflow.flow import Flow

__all__ = ["FlowNotFoundError", "load_flow", "split_target"]


class FlowNotFoundError(TaskflowError, LookupError):
    """The file, module or flow named on the command line cannot be found or loaded."""


def split_target(target: str) -> tuple[str, str | None]:
    """``"file.py:name"`` -> ``("file.py", "name")``; without ``:name``, ``None``."""
    where, sep, name = target.rpartition(":")
    if not sep or not name or "/" in name or "\\" in name:
        return target, None
    return where, name


def _dotted_name(path: str) -> str | None:
    """The module name ``path`` has when imported from ``sys.path``, if it has one."""
    for entry in sys.path:
        root = os.path.abspath(entry or os.getcwd())
        if not path.startswith(root + os.sep):
            continue
        parts = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
        if not all(p.isidentifier() for p in parts):
            continue
        folder, ok = root, True
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            ok = ok and os.path.exists(os.path.join(folder, "__init__.py"))
        if ok:
            return ".".join(parts)
    return None


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    dotted = _dotted_name(path)
    if dotted is not None:
        module = importlib.import_module(dotted)
        if os.path.abspath(getattr(module, "__file__", "") or "") == path:
            return module
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = stem if stem not in sys.modules else f"taskflow_file_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FlowNotFoundError(f"cannot load {path!r} as Python code", path=path)
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def _flows_in(module: ModuleType) -> dict[str, Flow[..., Any]]:
    return {k: v for k, v in vars(module).items() if isinstance(v, Flow)}


def load_flow(target: str) -> Flow[..., Any]:
    """The flow ``target`` names: ``file.py:name``, ``package.module:name``, or a
    file (or module) that defines exactly one flow.

    ``name`` is the variable holding the flow, or the flow's own name.

    Raises
    ------
    FlowNotFoundError
        The file or module is missing or fails to import, or has no such flow.
    """
    where, name = split_target(target)
    is_file = where.endswith(".py") or os.sep in where or os.path.exists(where)
    try:
        if is_file:
            if not os.path.isfile(where):
                raise FlowNotFoundError(
                    f"file {where!r} does not exist; give the path of a Python file and a "
                    "flow in it, e.g. `flows/etl.py:etl`", path=where,
                )
            module = _import_file(where)
        else:
            module = importlib.import_module(where)
    except FlowNotFoundError:
        raise
    except ModuleNotFoundError as e:
        if not is_file and e.name is not None and where.startswith(e.name):
            raise FlowNotFoundError(
                f"no file or module {where!r}: give the path of a Python file "
                "(`flows/etl.py:etl`) or an importable module (`mypkg.flows:etl`)", path=where,
            ) from e
        raise FlowNotFoundError(f"importing {where!r} failed: {type(e).__name__}: {e}",
                                path=where) from e
    except Exception as e:
        raise FlowNotFoundError(f"importing {where!r} failed: {type(e).__name__}: {e}",
                                path=where) from e
    flows = _flows_in(module)
    listing = ", ".join(sorted(flows)) or "none (decorate a function with @flow)"
    if name is None:
        if len(flows) == 1:
            return next(iter(flows.values()))
        raise FlowNotFoundError(
            f"{where!r} defines {len(flows)} flows ({listing}); say which one: "
            f"`{where}:NAME`", path=where,
        )
    found = flows.get(name) or next((f for f in flows.values() if f.name == name), None)
    if found is None:
        raise FlowNotFoundError(
            f"{where!r} has no flow named {name!r}; its flows are: {listing}",
            path=where, flow=name,
        )
    return found
