"""Sphinx configuration of the taskflow documentation.

Build (offline, no warnings allowed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Intersphinx links to Python, Dask and distributed are off unless
``TASKFLOW_DOCS_INTERSPHINX=1`` is set: the build must not need the network.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not another installed copy
sys.path.insert(0, str(HERE / "_ext"))

import taskflow  # noqa: E402

project = "taskflow"
author = "taskflow developers"
copyright = "2026, taskflow developers"
version = release = taskflow.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
    "taskflow_docs",
]
if os.environ.get("TASKFLOW_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "dask": ("https://docs.dask.org/en/stable", None),
        "distributed": ("https://distributed.dask.org/en/stable", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "deploying.md", "examples/*.md", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_default_options = {"members": True, "show-inheritance": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False  # attributes get anchors of their own

html_theme = "pydata_sphinx_theme"
html_title = f"taskflow {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}


# Each object is described once: the names of ``taskflow.__all__`` on the page of
# ``taskflow`` (api/taskflow), and not again on the pages of the subpackages that
# also export them (``taskflow.deploy.CronSchedule`` is ``taskflow.CronSchedule``).
_TOP_LEVEL = {id(getattr(taskflow, name)) for name in taskflow.__all__}


def _skip_top_level_names(app, what, name, obj, skip, options):  # noqa: ANN001, ANN201
    if app.env.docname != "api/taskflow" and what == "module" and id(obj) in _TOP_LEVEL:
        return True
    return None


def setup(app):  # noqa: ANN001, ANN201
    app.connect("autodoc-skip-member", _skip_top_level_names)


# Every cross-reference to taskflow must resolve (tests/test_docs.py builds with -n);
# references to other projects cannot, with intersphinx off, and are not checked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(abc|enum|logging|typing|collections|datetime|inspect|os|pathlib)(\..*)?"),
    (r"py:.*", r"(dask|distributed|fsspec|sqlalchemy|click|graphviz|tornado|yaml)(\..*)?"),
    (r"py:obj", r"taskflow\.(task|flow)\.[PR]"),  # ParamSpec and TypeVar of the generics
]
