"""Sphinx directives that generate reference text from the code, so it cannot drift.

* ``.. taskflow-config::`` -- every setting of ``taskflow/taskflow.yaml``: its
  dotted name, default, environment variable and the comment written above it.
* ``.. taskflow-cli::`` -- ``taskflow --help`` and the help of every command,
  as click prints it.

It also resolves a Python cross-reference to any other name of a documented object:
docstrings say ``:class:`~taskflow.deploy.schedules.CronSchedule``` or, inside
``taskflow.deploy``, ``:class:`CronSchedule```, and the reference documents it once,
as ``taskflow.CronSchedule``.  A reference to a taskflow name that exists but is
not documented (an engine internal) is shown as plain code; a reference to a name
that does not exist at all stays a warning, so typos and stale names fail the build.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from docutils import nodes
from docutils.parsers.rst import Directive

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "taskflow" / "taskflow.yaml"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_-]+):(?P<rest>.*)$")


def read_settings(text: str) -> list[dict[str, Any]]:
    """The settings of a dask.config YAML file, each with its comment.

    A comment block describes the keys that follow it at its own indentation,
    until the next comment or a key at another level.  Every leaf (a value
    that is not a non-empty mapping) is a setting; a mapping with a comment of
    its own (``local-cluster``) is one setting too.

    Examples
    --------
    >>> s = read_settings("taskflow:\\n  a:\\n    # the b\\n    b: 1\\n    c: {}\\n")
    >>> [(x["name"], x["doc"]) for x in s]
    [('taskflow.a.b', 'the b'), ('taskflow.a.c', 'the b')]
    """
    data = yaml.safe_load(text)
    settings: list[dict[str, Any]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    last_doc: dict[int, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        m = _KEY.match(line)
        if m is None:
            comment = []
            continue
        indent = len(m.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        for level in [k for k in last_doc if k > indent]:
            del last_doc[level]
        stack.append((indent, m.group("key")))
        path = [k for _, k in stack]
        if comment:
            last_doc[indent] = " ".join(comment)
        own_comment = bool(comment)
        comment = []
        value: Any = data
        for k in path:
            value = value[k]
        if not stack[:-1] or (isinstance(value, dict) and value and not own_comment):
            continue  # a section: its keys are the settings
        if any(".".join(path[:i]) == s["name"] for s in settings for i in range(len(path))):
            continue  # inside a mapping documented as one setting
        settings.append({"name": ".".join(path), "default": value,
                         "doc": last_doc.get(indent, "")})
    return settings


def _env(name: str) -> str:
    return "DASK_" + "__".join(name.split(".")).upper().replace("-", "_")


def _inline(text: str) -> list[nodes.Node]:
    """Text with ```code``` parts as literals."""
    parts = text.split("`")
    out: list[nodes.Node] = []
    for i, part in enumerate(parts):
        if part:
            out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


class ConfigDirective(Directive):
    """Every ``taskflow`` setting with its default, variable and description."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        env.note_dependency(str(CONFIG))
        settings = read_settings(CONFIG.read_text())
        dl = nodes.definition_list()
        for s in settings:
            item = nodes.definition_list_item()
            term = nodes.term()
            term += nodes.literal(s["name"], s["name"])
            target_id = nodes.make_id("config-" + s["name"])
            term["ids"].append(target_id)
            item += term
            body = nodes.definition()
            facts = nodes.paragraph()
            facts += nodes.Text("Default: ")
            facts += nodes.literal(_yaml_value(s["default"]), _yaml_value(s["default"]))
            facts += nodes.Text("; environment variable: ")
            facts += nodes.literal(_env(s["name"]), _env(s["name"]))
            body += facts
            if s["doc"]:
                para = nodes.paragraph()
                para.extend(_inline(s["doc"]))
                body += para
            item += body
            dl += item
        return [dl]


class CliDirective(Directive):
    """The help text of ``taskflow`` and of each of its commands."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import click

        from taskflow.cli import cli

        env = self.state.document.settings.env
        for path in sorted((ROOT / "taskflow").glob("cli*.py")):
            env.note_dependency(str(path))
        out: list[nodes.Node] = []

        def block(title: str, ctx: click.Context) -> None:
            text = ctx.command.get_help(ctx)
            heading = nodes.rubric("", "", nodes.literal(title, title),
                                   ids=[nodes.make_id("cli-" + title)])
            out.append(heading)
            out.append(nodes.literal_block(text, text, language="text"))

        # as the command line makes them: the group's settings (-h) reach every command
        group_ctx = click.Context(cli, info_name="taskflow", terminal_width=88,
                                  max_content_width=88, **cli.context_settings)
        block("taskflow", group_ctx)
        for name in cli.list_commands(group_ctx):
            cmd = cli.get_command(group_ctx, name)
            if cmd is not None and not cmd.hidden:
                block(f"taskflow {name}", click.Context(cmd, info_name=name, parent=group_ctx))
        return out


def _import(dotted: str) -> Any:
    """The object at ``a.b.c`` (a module, or attributes of one), or None."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        rest = parts[i:]
        for j, attr in enumerate(rest):
            try:
                obj = getattr(obj, attr)
                if obj is None:  # a class attribute whose value is None
                    obj = _InstanceAttribute(type(None), attr)
            except AttributeError:
                last = j == len(rest) - 1
                if last and isinstance(obj, type) and _instance_attribute(obj, attr):
                    return _InstanceAttribute(obj, attr)
                return None
        return obj
    return None


class _InstanceAttribute:
    """An attribute that instances of ``cls`` have but the class does not."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name = cls, name


def _instance_attribute(cls: type, name: str) -> bool:
    fields = getattr(cls, "__dataclass_fields__", {})
    return name in fields or name in getattr(cls, "__slots__", ()) or (
        re.search(rf"^\s*{re.escape(name)}\b", cls.__doc__ or "", re.M) is not None)


_DOCSTRING_OF = re.compile(r"docstring of ([\w.]+)")


def _documented(env: Any) -> dict[int, str]:
    """id() of each documented taskflow object -> its documented full name."""
    cache = getattr(env, "_taskflow_documented", None)
    if cache is None:
        cache = {}
        for name in sorted(env.get_domain("py").objects, key=len):
            if name.startswith("taskflow"):
                obj = _import(name)
                if obj is not None and not isinstance(obj, (int, float, bool)) and obj is not None:
                    cache.setdefault(id(obj), name)
        env._taskflow_documented = cache
    return cache


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    contexts = [node.get("py:module"), None]
    m = _DOCSTRING_OF.search(node.source or "")
    if m:  # where the docstring was written: its object, the class around it, its module
        path = m.group(1).split(".")
        owners = [".".join(path[:i]) for i in range(len(path), 1, -1)]
        owner = _import(m.group(1))
        module = getattr(owner, "__module__", None)
        contexts[:0] = [*owners, *([module] if isinstance(module, str) else [])]
    obj = found = None
    for context in contexts:
        found = f"{context}.{target}" if context else target
        obj = _import(found)
        if obj is not None:
            break
    if obj is None or found is None or not found.startswith("taskflow"):
        return None
    name = _documented(env).get(id(obj))
    if name is None:
        return contnode  # real, but internal: no page to link to
    from sphinx.util.nodes import make_refnode

    entry = env.get_domain("py").objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("taskflow-config", ConfigDirective)
    app.add_directive("taskflow-cli", CliDirective)
    app.connect("missing-reference", _resolve_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
