"""The documentation: it builds without warnings, its links resolve, its examples run.

The examples of the pages that promise runnable code ("Getting started", "Coming
from Prefect 1", "Coming from plain Dask") live in ``docs/examples/``: each
``NAME.py`` is shown on its page with ``literalinclude`` next to ``NAME.out``, the
output the page says it prints (``prefect1_*.py``, Prefect 1 code, is only compiled).
Here each one runs as a subprocess (on the embedded LocalCluster, with a run
history of its own) and its standard output is compared with ``NAME.out``, where
``...`` stands for text that differs from run to run (ids, ports, times), as in
doctest.  ``NAME.console`` files are shell sessions: ``$ command`` lines, each
followed by what it prints, run in one bash process and compared the same way.
"""
from __future__ import annotations

import doctest
import html.parser
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
RUNNABLE_PAGES = ["getting-started.md", "from-prefect.md", "from-dask.md"]

_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLES)])
    env["DASK_TASKFLOW__HISTORY__URL"] = f"sqlite:///{tmp_path / 'history.db'}"
    env.pop("DASK_TASKFLOW__EXECUTOR__ADDRESS", None)
    env["COLUMNS"] = "100"
    return env


def _same(expected: str, got: str) -> bool:
    return _CHECKER.check_output(expected, got, _FLAGS)


def _included(page: str) -> list[str]:
    """Files of docs/examples/ that a page includes (``literalinclude``)."""
    text = (DOCS / page).read_text()
    return re.findall(r"literalinclude\}\s+examples/(\S+)", text)


def _examples(suffix: str) -> list[str]:
    return sorted({f for p in RUNNABLE_PAGES for f in _included(p) if f.endswith(suffix)})


# -- the pages and their examples ----------------------------------------------------
def test_the_runnable_pages_show_code_only_through_included_example_files():
    for page in RUNNABLE_PAGES:
        text = (DOCS / page).read_text()
        fences = re.findall(r"^```(?:python|py|bash|console|shell)\s*$", text, re.M)
        assert not fences, f"{page}: code in a plain fence is not run by the tests; put it in docs/examples/"
        assert _included(page), f"{page} includes no example"


def test_every_included_example_exists_and_every_script_shows_its_output():
    for page in RUNNABLE_PAGES:
        for name in _included(page):
            assert (EXAMPLES / name).exists(), f"{page} includes examples/{name}, which is missing"
            if name.endswith(".py") and not name.startswith("prefect1"):
                out = name[:-3] + ".out"
                assert out in _included(page), f"{page} shows examples/{name} but not its output {out}"


def test_prefect_1_originals_are_valid_python():
    originals = [n for n in _examples(".py") if n.startswith("prefect1")]
    assert originals, "the Prefect 1 page shows the Prefect 1 flow it rewrites"
    for name in originals:
        compile((EXAMPLES / name).read_text(), name, "exec")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in _examples(".py") if not n.startswith("prefect1")])
def test_example_prints_what_its_page_shows(name, tmp_path):
    expected = (EXAMPLES / (name[:-3] + ".out")).read_text()
    proc = subprocess.run(
        [sys.executable, name], cwd=EXAMPLES, env=_env(tmp_path),
        capture_output=True, text=True, timeout=100,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"
    assert _same(expected, proc.stdout), (
        f"{name} printed:\n{proc.stdout}\nbut its page shows:\n{expected}\nstderr:\n{proc.stderr[-2000:]}"
    )


def _console_blocks(text: str) -> list[tuple[str, str]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            blocks.append((line[2:], []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console file starts with a command, got {line!r}")
    return [(cmd, "\n".join(out).strip() + "\n" if "".join(out).strip() else "") for cmd, out in blocks]


@pytest.mark.slow
@pytest.mark.parametrize("name", _examples(".console"))
def test_console_session_prints_what_its_page_shows(name, tmp_path):
    blocks = _console_blocks((EXAMPLES / name).read_text())
    marker = "@@taskflow-docs-next-command@@"
    script = "set -e\n" + "".join(f"echo {marker}\n{cmd}\n" for cmd, _ in blocks)
    proc = subprocess.run(
        ["bash", "-c", script], cwd=EXAMPLES, env=_env(tmp_path),
        capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    outputs = proc.stdout.split(marker + "\n")[1:]
    assert len(outputs) == len(blocks)
    for (cmd, expected), got in zip(blocks, outputs):
        assert _same(expected, got), f"$ {cmd}\nprinted:\n{got}\nbut the page shows:\n{expected}"


# -- the build --------------------------------------------------------------------
class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if d.get("id"):
            self.ids.add(d["id"] or "")
        if tag == "a" and d.get("href"):
            self.hrefs.append(d["href"] or "")
        if tag in ("img", "object", "embed") and (d.get("src") or d.get("data")):
            self.hrefs.append(d.get("src") or d.get("data") or "")


def broken_local_links(site: Path) -> list[str]:
    """Links between pages of a built site whose file or anchor is missing."""
    pages: dict[Path, _Links] = {}
    for path in site.rglob("*.html"):
        parser = _Links()
        parser.feed(path.read_text(errors="replace"))
        pages[path.resolve()] = parser
    broken = []
    for path, parser in pages.items():
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith("mailto:"):
                continue  # outside the site: not checked (no network here)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {href} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                if parts.fragment not in pages[target].ids:
                    broken.append(f"{path.relative_to(site)}: {href} (no such anchor)")
    return broken


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TASKFLOW_DOCS_INTERSPHINX", None)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-E",
         "-b", "html", str(DOCS), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, f"the docs build warned or failed:\n{proc.stderr[-6000:]}"
    return out


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_docs_build_with_no_warnings_and_every_internal_link_resolves(site):
    assert (site / "index.html").exists()
    assert broken_local_links(site) == []


@pytest.mark.slow
def test_api_reference_documents_every_public_name(site):
    import taskflow

    api = (site / "api" / "taskflow.html").read_text()
    for name in taskflow.__all__:
        if name == "triggers":
            continue  # a module: its own page
        assert f'id="taskflow.{name}"' in api, f"taskflow.{name} is missing from the API reference"


@pytest.mark.slow
def test_configuration_page_lists_every_setting_of_taskflow_yaml(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from taskflow_docs import read_settings
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    text = (site / "concepts.html").read_text()
    settings = read_settings((ROOT / "taskflow" / "taskflow.yaml").read_text())
    assert len(settings) > 20
    for s in settings:
        assert s["name"] in text, f"{s['name']} is missing from the configuration section"


def test_broken_local_links_are_found(tmp_path):
    (tmp_path / "a.html").write_text('<p id="here"></p><a href="a.html#here">ok</a>'
                                     '<a href="b.html">gone</a><a href="#nowhere">x</a>'
                                     '<a href="https://example.org/x">outside</a>')
    assert sorted(broken_local_links(tmp_path)) == [
        "a.html: #nowhere (no such anchor)", "a.html: b.html (no such file)",
    ]


# -- docstrings -------------------------------------------------------------------
PUBLIC_MODULES = ["taskflow", "taskflow.triggers", "taskflow.executors", "taskflow.results",
                  "taskflow.history", "taskflow.deploy", "taskflow.dashboard"]


def _public_names():
    import enum
    import importlib
    import inspect

    seen: set[int] = set()
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen or inspect.ismodule(obj) or not callable(obj):
                continue
            seen.add(id(obj))
            try:
                params = [p for p in inspect.signature(obj).parameters.values()
                          if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            except (TypeError, ValueError):
                params = []
            if inspect.isclass(obj) and issubclass(obj, (BaseException, enum.Enum)):
                params = []  # exceptions take a message; enums take a value
            yield f"{modname}.{name}", obj, bool(params)


def test_every_public_name_has_a_summary_parameters_and_an_example():
    import inspect

    from numpydoc.docscrape import NumpyDocString

    problems = []
    for name, obj, takes_arguments in _public_names():
        doc = NumpyDocString(inspect.getdoc(obj) or "")
        missing = [part for part, ok in [
            ("a summary", bool(doc["Summary"])),
            ("an Examples section", bool(doc["Examples"])),
            ("a Parameters section", not takes_arguments or bool(
                doc["Parameters"] or doc["Other Parameters"] or doc["Attributes"])),
        ] if not ok]
        if missing:
            problems.append(f"{name}: needs {', '.join(missing)}")
    assert problems == [], "\n".join(problems)


def test_a_reference_to_a_taskflow_name_that_does_not_exist_fails_the_build(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'taskflow_docs']\n"
        "nitpicky = True\n"
        "autodoc_typehints = 'none'\n"
    )
    (src / "index.rst").write_text(
        "Index\n=====\n\n"
        ".. autofunction:: taskflow.triggers.all_finished\n\n"
        "Internal, not documented: :class:`taskflow.engine.plan.Plan`.\n\n"
        "Another name of a documented object: :func:`taskflow.triggers.always_run`.\n\n"
        "Stale: :func:`taskflow.triggers.no_such_trigger`.\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-E", "-b", "html", str(src), str(tmp_path / "out")],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=100,
    )
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "taskflow.triggers.no_such_trigger" in warnings[0], proc.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    # always_run is all_finished under another name: the reference links to it
    assert page.count('href="#taskflow.triggers.all_finished"') == 2
