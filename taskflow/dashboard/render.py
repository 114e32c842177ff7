"""HTML of the taskflow pages: the list of flow runs, and one run.

Pages are whole documents built from the dicts of :mod:`taskflow.dashboard.model`;
everything shown is escaped.  They load nothing from elsewhere: styles and the
few lines of script are inline.  While something runs, the script fetches the
page's ``?partial=1`` fragment every few seconds and swaps it in; a finished
run's page stops refreshing.

Examples
--------
>>> html = runs_page([], base="/taskflow", dask_root="/", refresh_ms=2000)
>>> "No flow runs yet" in html
True
"""
from __future__ import annotations

import time
from html import escape
from typing import Any

from taskflow.schematic import COLOURS, DARK_INK, graph_svg

__all__ = ["not_found_page", "run_page", "runs_page"]

_MAX_ROWS = 500
_ORDER = ["SUCCESS", "CACHED", "SKIPPED", "RUNNING", "RETRYING", "FAILED", "TRIGGER_FAILED",
          "TIMED_OUT", "CRASHED", "CANCELLED", "PENDING"]

_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d232b; background: #f5f6f8; }
header { background: #1f2933; color: #fff; padding: 10px 20px; display: flex; gap: 20px;
         align-items: baseline; }
header .brand { font-weight: 700; font-size: 17px; }
header a { color: #cfe3ff; text-decoration: none; }
header a:hover { text-decoration: underline; }
main { padding: 16px 20px 40px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 22px 0 8px; color: #3a4450; }
.card { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 12px 14px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 22px; color: #4b5563; margin: 8px 0 0; }
.meta b { color: #1d232b; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e1e4e8;
        border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eef0f3;
         vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; color: #3a4450; font-size: 13px; }
tr:last-child td { border-bottom: none; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; color: #fff; white-space: nowrap; }
.bar { display: flex; width: 160px; height: 10px; border-radius: 5px; overflow: hidden;
       background: #e6e9ee; margin-top: 4px; }
.bar span { display: block; height: 100%; }
.muted { color: #6b7280; }
.graphbox { overflow: auto; background: #fff; border: 1px solid #e1e4e8; border-radius: 8px;
            padding: 6px; }
pre { white-space: pre-wrap; margin: 6px 0 0; font-size: 12px; background: #fbf3f2;
      padding: 8px; border-radius: 6px; max-height: 320px; overflow: auto; }
details summary { cursor: pointer; color: #9b2c2c; }
a { color: #1a5fb4; }
.msg { max-width: 520px; }
table.kv td:first-child { width: 220px; }
"""

_SCRIPT = """
(function () {
  var every = %d;
  function tick() {
    var box = document.getElementById("tf-content");
    if (!box || box.getAttribute("data-live") !== "true") { return; }
    var open = Array.prototype.map.call(box.querySelectorAll("details[open]"),
                                        function (d) { return d.id; });
    fetch(window.location.pathname + "?partial=1", {cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          box.outerHTML = html;
          open.forEach(function (id) { var d = id && document.getElementById(id); if (d) { d.open = true; } });
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
"""


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "<1 ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _badge(state: str) -> str:
    colour = COLOURS.get(state, "#8d949c")
    ink = "#1d232b" if state in DARK_INK else "#fff"
    return (f'<span class="badge state" data-state="{escape(state)}" '
            f'style="background:{colour};color:{ink}">{escape(state)}</span>')


def _bar(counts: dict[str, int], total: int) -> str:
    if total <= 0:
        return ""
    parts = []
    for state in _ORDER:
        n = counts.get(state, 0)
        if n and state != "PENDING":
            parts.append(f'<span title="{n} {state}" style="width:{100 * n / total:.2f}%;'
                         f'background:{COLOURS.get(state, "#8d949c")}"></span>')
    return f'<div class="bar">{"".join(parts)}</div>'


def _document(title: str, body: str, base: str, dask_root: str, refresh_ms: int) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>"
        f'<header><span class="brand">taskflow</span><a href="{escape(base)}">Flow runs</a>'
        f'<a href="{escape(dask_root)}status">Dask status</a>'
        f'<a href="{escape(base)}/api/runs">JSON</a></header>'
        f"<main>{body}</main><script>{_SCRIPT % refresh_ms}</script></body></html>"
    )


def _runs_fragment(runs: list[dict[str, Any]], base: str) -> str:
    if not runs:
        rows = ('<p class="muted">No flow runs yet. Runs started through a DaskExecutor on '
                "this cluster appear here as they start.</p>")
    else:
        body = []
        for r in runs:
            link = f"{base}/run/{escape(r['run_id'])}"
            body.append(
                f'<tr data-run="{escape(r["run_id"])}">'
                f'<td><a href="{link}"><b>{escape(r["flow_name"] or "(unknown flow)")}</b></a></td>'
                f'<td class="mono"><a href="{link}">{escape(r["run_id"][:8])}</a></td>'
                f'<td>{_badge(r["state"])}</td>'
                f'<td>{r["done"]}/{r["total"]}{_bar(r["counts"], r["total"])}</td>'
                f'<td class="num">{_when(r["started"])}</td>'
                f'<td class="num">{_took(r["duration"])}</td>'
                f'<td class="muted">{escape(r["host"])}</td></tr>'
            )
        rows = ("<table><thead><tr><th>Flow</th><th>Run</th><th>State</th><th>Tasks done</th>"
                "<th>Started</th><th>Duration</th><th>Client host</th></tr></thead><tbody>"
                + "".join(body) + "</tbody></table>")
    live = sum(1 for r in runs if r["live"])
    return (f'<div id="tf-content" data-live="true"><h1>Flow runs</h1>'
            f'<p class="muted">{len(runs)} kept on this scheduler, {live} running.</p>{rows}</div>')


def runs_page(runs: list[dict[str, Any]], *, base: str, dask_root: str, refresh_ms: int,
              partial: bool = False) -> str:
    """The list of flow runs (newest first); ``partial`` gives only the refreshing part."""
    frag = _runs_fragment(runs, base)
    return frag if partial else _document("taskflow: flow runs", frag, base, dask_root, refresh_ms)


def _task_rows(tasks: list[dict[str, Any]]) -> str:
    rows = []
    for t in tasks[:_MAX_ROWS]:
        stored = ""
        if t.get("location"):
            stored = f'<div class="mono muted">result: {escape(t["location"])}</div>'
        detail = ""
        if t["error"] or t["traceback"]:
            did = f"err-{escape(t['name'])}"
            text = "\n\n".join(x for x in (t["error"], t["traceback"]) if x)
            detail = (f'<details id="{did}"><summary>error</summary>'
                      f'<pre class="mono">{escape(text)}</pre></details>')
        rows.append(
            f'<tr data-task="{escape(t["name"])}"><td class="mono">{escape(t["name"])}</td>'
            f'<td>{_badge(t["state"])}</td><td class="num">{t["attempts"]}</td>'
            f'<td class="num">{_took(t["duration"])}</td>'
            f'<td class="mono muted">{escape(t["worker"])}</td>'
            f'<td class="msg">{escape(t["message"])}{stored}{detail}</td></tr>'
        )
    more = ""
    if len(tasks) > _MAX_ROWS:
        more = (f'<p class="muted">Showing {_MAX_ROWS} of {len(tasks)} task runs; '
                "the JSON API has them all.</p>")
    return ("<table><thead><tr><th>Task run</th><th>State</th><th>Attempts</th><th>Duration</th>"
            "<th>Worker</th><th>Message</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + more)


def _run_fragment(run: dict[str, Any], base: str) -> str:
    nodes = run["nodes"]
    progress = []
    for n in nodes:
        size = n["size"]
        counts = n["counts"] if n["mapped"] else {n["state"]: 1}
        progress.append(
            f'<tr data-node="{escape(n["name"])}"><td class="mono">{escape(n["name"])}'
            f'{" <span class=muted>(mapped)</span>" if n["mapped"] else ""}</td>'
            f'<td>{_badge(n["state"])}</td>'
            f'<td>{n["done"]}/{size}{_bar(counts, size)}</td>'
            f'<td class="num">{n["attempts"]}</td><td class="num">{_took(n["duration"])}</td>'
            f'<td class="msg">{escape(n["message"])}</td></tr>'
        )
    params = "".join(f'<tr><td class="mono">{escape(k)}</td><td class="mono">{escape(v)}</td></tr>'
                     for k, v in run["parameters"].items())
    logs = "".join(
        f'<tr><td class="num">{_when(lg["time"])}</td><td class="mono">{escape(lg["task"])}</td>'
        f'<td class="mono">{escape(lg["message"])}</td></tr>' for lg in run["logs"][-100:]
    )
    message = f'<span class="muted">{escape(run["message"])}</span>' if run["message"] else ""
    span = " / ".join(run["span"])
    return (
        f'<div id="tf-content" data-live="{"true" if run["live"] else "false"}" '
        f'data-run="{escape(run["run_id"])}">'
        f'<p><a href="{base}">\u2190 all flow runs</a></p>'
        f'<div class="card"><h1>flow {escape(run["flow_name"] or "(unknown)")} '
        f'<span id="run-state">{_badge(run["state"])}</span></h1>{message}'
        f'<div class="meta"><span>run <b class="mono">{escape(run["run_id"])}</b></span>'
        f'<span>started <b>{_when(run["started"])}</b></span>'
        f'<span>duration <b>{_took(run["duration"])}</b></span>'
        f'<span>tasks <b>{run["done"]}/{run["total"]}</b></span>'
        f'<span>client <b>{escape(run["host"])}</b></span>'
        + (f'<span>Dask span <b class="mono">{escape(span)}</b></span>' if span else "")
        + f'</div>{_bar(run["counts"], run["total"])}</div>'
        f'<h2>Graph</h2><div class="graphbox">{graph_svg(nodes, run["edges"])}</div>'
        f'<h2>Progress by task</h2><table><thead><tr><th>Task</th><th>State</th><th>Done</th>'
        f'<th>Attempts</th><th>Duration</th><th>Message</th></tr></thead>'
        f'<tbody>{"".join(progress)}</tbody></table>'
        f'<h2>Task runs</h2>{_task_rows(run["tasks"])}'
        + (f'<h2>Parameters</h2><table class="kv"><tbody>{params}</tbody></table>' if params else "")
        + (f'<h2>Logs</h2><table><tbody>{logs}</tbody></table>' if logs else "")
        + "</div>"
    )


def run_page(run: dict[str, Any], *, base: str, dask_root: str, refresh_ms: int,
             partial: bool = False) -> str:
    """One run: state, graph, progress by task, task runs, parameters, logs."""
    frag = _run_fragment(run, base)
    title = f"taskflow: {run['flow_name']} {run['run_id'][:8]} {run['state']}"
    return frag if partial else _document(title, frag, base, dask_root, refresh_ms)


def not_found_page(run_id: str, *, base: str, dask_root: str) -> str:
    """The page for a run id this scheduler does not keep."""
    body = (f'<div id="tf-content" data-live="false"><h1>No such flow run</h1>'
            f'<p>This scheduler keeps no run <span class="mono">{escape(run_id)}</span>: it never '
            f'ran here, or it is older than the runs kept (<code>taskflow.dashboard.max-runs</code>).'
            f'</p><p><a href="{base}">All flow runs</a></p></div>')
    return _document("taskflow: no such run", body, base, dask_root, 0)
