"""HTML of the taskflow pages: the list of flow runs, and one run.

Pages are the Jinja2 templates the server uses too (``taskflow/server/templates``,
``dashboard_*.html`` extending the one ``base.html``), filled from the dicts of
:mod:`taskflow.dashboard.model`; everything shown is escaped.  They load nothing
from elsewhere: the style sheet is inlined and the few lines of script are
inline.  While something runs, the script fetches the page's ``?partial=1``
fragment every few seconds and swaps it in; a finished run's page stops
refreshing.  With ``taskflow.server.url`` set, a run's page links to the run on
the taskflow server, which keeps it after the cluster is gone.

Examples
--------
>>> html = runs_page([], base="/taskflow", dask_root="/", refresh_ms=2000)
>>> "No flow runs yet" in html
True
"""
from __future__ import annotations

from typing import Any

from taskflow.config import get, run_url
from taskflow.schematic import graph_svg
from taskflow.server.templating import templates

__all__ = ["MAX_ROWS", "not_found_page", "run_page", "runs_page"]

MAX_ROWS = 500  # task runs a run's page shows (the JSON API pages with tasks_limit=)


def _render(name: str, **values: Any) -> str:
    server = get("server.url")
    return templates().get_template(name).render(
        inline_css=True, server_url=str(server).rstrip("/") + "/" if server else None, **values)


def runs_page(runs: list[dict[str, Any]], *, base: str, dask_root: str, refresh_ms: int,
              partial: bool = False) -> str:
    """The list of flow runs (newest first); ``partial`` gives only the refreshing part."""
    name = "dashboard_runs_part.html" if partial else "dashboard_runs.html"
    return _render(name, title="Flow runs", runs=runs, base=base, dask_root=dask_root,
                   refresh_ms=refresh_ms)


def run_page(run: dict[str, Any], *, base: str, dask_root: str, refresh_ms: int,
             partial: bool = False) -> str:
    """One run: state, graph, progress by task, task runs, parameters, logs."""
    name = "dashboard_run_part.html" if partial else "dashboard_run.html"
    return _render(name, title=f"{run['flow_name']} {run['run_id'][:8]} {run['state']}",
                   run=run, svg=graph_svg(run["nodes"], run["edges"]), base=base,
                   dask_root=dask_root, refresh_ms=refresh_ms, max_rows=MAX_ROWS,
                   server_page=run_url(run["run_id"]))


def not_found_page(run_id: str, *, base: str, dask_root: str) -> str:
    """The page for a run id this scheduler does not keep."""
    return _render("dashboard_missing.html", title="No such run", run_id=run_id,
                   base=base, dask_root=dask_root, refresh_ms=0, server_page=run_url(run_id))
