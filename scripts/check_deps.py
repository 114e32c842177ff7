"""`pip check`, limited to dask-taskflow and what it depends on.

The machine image may carry packages of its own (awscli pins one botocore) that
conflict with versions our dependencies need; those are not ours to fix, but a
broken requirement anywhere in our own dependency tree is. Exit 1 on the latter.
"""
from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata


def _name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def closure(root: str, extras: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [(root, extras)]
    while todo:
        name, want = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in reqs:
            marker = req.split(";", 1)[1] if ";" in req else ""
            m = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if m and m.group(1) not in want:
                continue
            todo.append((_name(req), set()))
    return seen


def main() -> int:
    ours = closure("dask-taskflow", set(sys.argv[1:]) or {"test"})
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    bad = [line for line in out.splitlines() if line and _name(line) in ours]
    for line in out.splitlines():
        if line and line not in bad and "No broken requirements" not in line:
            print(f"check_deps: ignoring a conflict outside taskflow's dependencies: {line}")
    for line in bad:
        print(f"check_deps: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
