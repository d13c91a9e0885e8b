"""One self-contained static HTML page from a results JSONL: table, timelines, thumbnails, evidence.

The page needs no network: CSS and JS are inline (the script is pinned by a Content-Security-Policy
hash, so nothing else can run), images are ``data:`` URIs. Every string that comes from a file or a
result (paths, reasons, evidence, names) is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from forensics.records import read_records
from forensics.report.campaign import campaign_view, clusters_of, thumbnail_of
from forensics.report.explain import explain

PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")
THUMB_WIDTH = 320
MAX_POINTS = 400  # per detector and timeline; longer series are max-pooled into this many bins

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.5em;margin:0 0 .3em} h2{font-size:1.2em;margin:1.5em 0 .5em} h3{font-size:1em;margin:0 0 .4em}
table{border-collapse:collapse;background:#fff} th,td{border:1px solid #ddd;padding:3px 6px;text-align:left}
#files th{cursor:pointer;background:#eee;position:sticky;top:0;user-select:none}
#files th[aria-sort=ascending]::after{content:" \\25B2"} #files th[aria-sort=descending]::after{content:" \\25BC"}
.file{max-width:28em;overflow-wrap:anywhere;white-space:pre-wrap}
.fake{color:#b00;font-weight:600} .real{color:#070} .unknown{color:#777}
.skipped{color:#777;font-style:italic} .error{color:#b00;font-style:italic}
.num{font-variant-numeric:tabular-nums;text-align:right}
#controls{margin:.6em 0;display:flex;gap:1em;flex-wrap:wrap;align-items:center}
.gallery{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px}
figcaption{font-size:12px;max-width:320px;overflow-wrap:anywhere;white-space:pre-wrap}
section.detail{background:#fff;border:1px solid #ddd;padding:.6em 1em;margin:.8em 0}
dl{margin:.2em 0 .2em 1em;display:grid;grid-template-columns:max-content auto;gap:0 .8em}
dt{font-weight:600} dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}
.legend span{margin-right:1.2em} .muted{color:#777} code{font-size:12px}
#clusters th{cursor:pointer;background:#eee;user-select:none}
tr.cluster{cursor:pointer} tr.cluster.open{background:#eef}
#clusters th[aria-sort=ascending]::after{content:" \\25B2"} #clusters th[aria-sort=descending]::after{content:" \\25BC"}
.strip img{margin-right:3px;vertical-align:middle} .controls{margin:.6em 0;display:flex;gap:1em;align-items:center}
.thumb{cursor:pointer} body[data-blur=on] .thumb:not(.shown){filter:blur(16px)}
"""

JS = """
(function () {
  "use strict";
  var table = document.getElementById("files");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var q = document.getElementById("q"), fv = document.getElementById("f-verdict");
  var fd = document.getElementById("f-detector"), fs = document.getElementById("f-status");
  var count = document.getElementById("count");
  var clusterFilter = "";
  function matches(row) {
    if (clusterFilter && row.getAttribute("data-cluster") !== clusterFilter) return false;
    if (fv.value && row.getAttribute("data-verdict") !== fv.value) return false;
    if (q.value && row.getAttribute("data-name").indexOf(q.value.toLowerCase()) < 0) return false;
    if (!fd.value && !fs.value) return true;
    var cells = row.querySelectorAll("td[data-det]"), ran = 0;
    for (var i = 0; i < cells.length; i++) {
      var st = cells[i].getAttribute("data-status");
      if (!st) continue;
      ran++;
      if (fd.value && cells[i].getAttribute("data-det") !== fd.value) continue;
      if (!fs.value || st === fs.value) return true;
    }
    // A file no detector ran on (a record with no results) is filtered by its own status.
    return !ran && !fd.value && row.getAttribute("data-status") === fs.value;
  }
  function apply() {
    var shown = 0;
    rows.forEach(function (row) { var ok = matches(row); row.hidden = !ok; if (ok) shown++; });
    count.textContent = shown + " of " + rows.length + " files shown";
    table.setAttribute("data-shown", String(shown));
  }
  function sortable(tbl, rowsOf, after) {
    var hs = Array.prototype.slice.call(tbl.tHead.rows[0].cells);
    hs.forEach(function (th, col) {
      th.tabIndex = 0;
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); th.click(); }
      });
      th.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") === "ascending";
        var numeric = th.getAttribute("data-type") === "num";
        hs.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var list = rowsOf();
        list.sort(function (a, b) {
          var x = key(a, col, numeric), y = key(b, col, numeric);
          if (x === y) return 0;
          if (x === null) return 1;
          if (y === null) return -1;
          return (x < y ? -1 : 1) * (desc ? -1 : 1);
        });
        after(list);
      });
    });
    return hs;
  }
  function key(row, col, numeric) {
    var v = row.cells[col].getAttribute("data-sort");
    if (numeric) { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return v === null || v === "" ? null : v.toLowerCase();
  }
  var heads = sortable(table, function () { return rows; }, function (list) {
    var body = table.tBodies[0];
    list.forEach(function (r) { body.appendChild(r); });
  });
  [q, fv, fd, fs].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  // A view can be linked: #verdict=fake&detector=face_swap&status=ok&q=name&sort=-2 (column index, - = descending).
  var params = new URLSearchParams(location.hash.slice(1));
  [["q", q], ["verdict", fv], ["detector", fd], ["status", fs]].forEach(function (p) {
    if (params.has(p[0])) p[1].value = params.get(p[0]);
  });
  var sort = parseInt(params.get("sort"), 10);
  if (!isNaN(sort) && heads[Math.abs(sort)]) {
    heads[Math.abs(sort)].click();
    if (params.get("sort").charAt(0) === "-") heads[Math.abs(sort)].click();
  }
  // Safe viewing: while #blur is checked, every thumbnail and heatmap is blurred until it is clicked.
  var blur = document.getElementById("blur");
  function setBlur() { document.body.setAttribute("data-blur", blur.checked ? "on" : "off"); }
  if (params.get("blur") === "off") blur.checked = false;
  blur.addEventListener("change", setBlur);
  setBlur();
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest(".thumb") : null;
    if (!t || document.body.getAttribute("data-blur") !== "on" || t.classList.contains("shown")) return;
    ev.preventDefault();
    ev.stopPropagation();
    t.classList.add("shown");
  }, true);
  // The campaign view: clusters sort and filter; a cluster's row opens its files and filters the file table.
  var ctable = document.getElementById("clusters");
  if (ctable) {
    var crows = Array.prototype.slice.call(ctable.querySelectorAll("tr.cluster"));
    var cq = document.getElementById("cq"), cfake = document.getElementById("cfake");
    var ccount = document.getElementById("ccount");
    var members = function (r) {
      return ctable.querySelector('tr[data-members="' + r.getAttribute("data-cluster") + '"]');
    };
    var capply = function () {
      var shown = 0;
      crows.forEach(function (r) {
        var ok = (!cfake.checked || r.getAttribute("data-fake") === "1") &&
          (!cq.value || r.getAttribute("data-name").indexOf(cq.value.toLowerCase()) >= 0);
        r.hidden = !ok;
        if (!ok) members(r).hidden = true;
        if (ok) shown++;
      });
      ccount.textContent = shown + " of " + crows.length + " clusters shown";
      ctable.setAttribute("data-shown", String(shown));
    };
    var open = function (r) {
      var m = members(r), opening = m.hidden;
      crows.forEach(function (o) { members(o).hidden = true; o.classList.remove("open"); });
      m.hidden = !opening;
      if (opening) r.classList.add("open");
      clusterFilter = opening ? r.getAttribute("data-cluster") : "";
      ctable.setAttribute("data-open", clusterFilter);
      apply();
    };
    crows.forEach(function (r) {
      r.addEventListener("click", function () { open(r); });
      r.addEventListener("keydown", function (ev) { if (ev.key === "Enter") open(r); });
    });
    var cheads = sortable(ctable, function () { return crows; }, function (list) {
      var body = ctable.tBodies[0];
      list.forEach(function (r) { body.appendChild(r); body.appendChild(members(r)); });
    });
    [cq, cfake].forEach(function (el) { el.addEventListener("input", capply); el.addEventListener("change", capply); });
    if (params.has("cq")) cq.value = params.get("cq");
    if (params.get("cfake") === "1") cfake.checked = true;
    var csort = parseInt(params.get("csort"), 10);
    if (!isNaN(csort) && cheads[Math.abs(csort)]) {
      cheads[Math.abs(csort)].click();
      if (params.get("csort").charAt(0) === "-") cheads[Math.abs(csort)].click();
    }
    capply();
    var chosen = params.has("cluster") ? document.getElementById("c" + params.get("cluster")) : null;
    if (chosen) open(chosen);
  }
  apply();
  document.body.setAttribute("data-ready", String(rows.length));
})();
"""


def write_html(
    results_jsonl: Path,
    out_html: Path,
    *,
    thumbnails: int = 12,
    media_root: Path | None = None,
    blur: bool = True,
    campaign: bool = True,
) -> Path:
    """Write one self-contained HTML report of a results JSONL and return its path.

    ``thumbnails`` caps how many of the most suspicious frames are decoded and shown (with face
    boxes and, where the detector can explain itself, a heatmap); ``media_root`` is where to look
    for the media when the recorded paths are relative or have moved. ``blur`` starts the page with
    every thumbnail and heatmap blurred until clicked (a checkbox on the page turns it off).
    ``campaign`` adds the campaign view (clusters, timeline) when the records carry fingerprints.
    """
    latest: dict[str, dict[str, Any]] = {}
    malformed = 0
    for rec in read_records(Path(results_jsonl)):
        if not _well_formed(rec):
            malformed += 1
            continue
        latest.pop(rec["path"], None)  # a rescan replaces the earlier record, in its new position
        latest[rec["path"]] = rec
    records = list(latest.values())
    detectors = sorted({str(r.get("detector")) for rec in records for r in rec.get("results") or []})
    colours = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(detectors)}
    root = _common_root([rec["path"] for rec in records])
    gallery = _gallery(records, thumbnails, media_root, root)
    clusters = clusters_of(records, Path(results_jsonl)) if campaign else {}
    index = {rec["path"]: i for i, rec in enumerate(records)}
    view = (
        campaign_view(
            records, clusters, index, lambda p: _shown(p, root),
            lambda p, m: thumbnail_of(p, m, _data_uri) if thumbnails else "", media_root,
        )
        if clusters
        else ""
    )  # fmt: skip
    script_hash = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>forensics report</title>",
        f'<style>{CSS}</style></head><body data-blur="{"on" if blur else "off"}">',
        _header(records, Path(results_jsonl), root, malformed),
        _controls(detectors, blur),
        _table(records, detectors, root, clusters),
        view,
        gallery,
        "<h2>Files</h2>",
        *(_detail(i, rec, colours, root) for i, rec in enumerate(records)),
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8", errors="replace")
    return out


# -- small formatting helpers ----------------------------------------------------------------


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else ""


def _sort(value: Any) -> str:
    return _e(value) if value is not None else ""


def _common_root(paths: list[str]) -> str:
    """The folder shared by every path, shown once in the header so rows stay short."""
    if not paths:
        return ""
    try:
        root = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:
        return ""
    return root if root not in ("", os.sep) else ""


def _shown(path: str, root: str) -> str:
    return os.path.relpath(path, root) if root and path.startswith(root + os.sep) else path


def _span(span: Any) -> str:
    if not span or len(span) != 2:
        return ""
    return f"{_num(span[0], 2)}–{_num(span[1], 2)} s"


def _results(rec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(r.get("detector")): r for r in rec.get("results") or []}


# -- page parts ---------------------------------------------------------------------------


def _well_formed(rec: dict[str, Any]) -> bool:
    """Whether a record parses as a :class:`MediaReport` (so every field the page reads has its type)."""
    from forensics.results import MediaReport

    try:
        MediaReport.from_dict(rec)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return isinstance(rec["path"], str) and isinstance(rec.get("info") or {}, dict)


def _header(records: list[dict[str, Any]], source: Path, root: str, malformed: int) -> str:
    verdicts: dict[str, int] = {}
    for rec in records:
        v = (rec.get("verdict") or {}).get("label") or "unknown"
        verdicts[v] = verdicts.get(v, 0) + 1
    counts = ", ".join(f'<span class="{_e(k)}">{_e(k)}</span>: {n}' for k, n in sorted(verdicts.items()))
    versions = sorted({str(rec.get("version")) for rec in records if rec.get("version")})
    rule = next(((rec.get("verdict") or {}).get("rule") for rec in records if rec.get("verdict")), None)
    lines = [
        "<h1>forensics report</h1>",
        f"<p>{len(records)} files from <code>{_e(source)}</code>"
        + (f" under <code>{_e(root)}</code>" if root else "")
        + f". Verdicts: {counts or 'none'}."
        + (f' <span class="error">{malformed} malformed record(s) left out.</span>' if malformed else "")
        + "</p>",
        f'<p class="muted">Generated {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}; forensics'
        f" {_e(', '.join(versions) or '?')}; verdict rule: {_e(rule or '?')}. Scores are calibrated"
        " P(fake); each detector's threshold is data in its weights.</p>",
    ]
    return "\n".join(lines)


def _controls(detectors: list[str], blur: bool) -> str:
    dets = "".join(f'<option value="{_e(d)}">{_e(d)}</option>' for d in detectors)
    return (
        '<div id="controls">'
        '<label>file <input id="q" type="search" placeholder="filter by name"></label>'
        '<label>verdict <select id="f-verdict"><option value="">any</option><option>fake</option>'
        "<option>real</option><option>unknown</option></select></label>"
        f'<label>detector <select id="f-detector"><option value="">any</option>{dets}</select></label>'
        '<label>status <select id="f-status"><option value="">any</option><option>ok</option>'
        "<option>skipped</option><option>error</option></select></label>"
        '<span id="count"></span>'
        '<label title="blur every thumbnail and heatmap until it is clicked">'
        f'<input id="blur" type="checkbox"{" checked" if blur else ""}> blur images</label></div>'
    )


def _table(records: list[dict[str, Any]], detectors: list[str], root: str, clusters: dict[str, Any]) -> str:
    head = [
        '<th data-type="str">file</th>',
        '<th data-type="str">verdict</th>',
        '<th data-type="num">verdict score</th>',
        '<th data-type="str">decided by (span)</th>',
        *(f'<th data-type="num">{_e(d)}</th>' for d in detectors),
        '<th data-type="str">kind</th>',
        '<th data-type="num">duration (s)</th>',
        *(['<th data-type="num">cluster</th>'] if clusters else []),
    ]
    body = []
    for i, rec in enumerate(records):
        path = str(rec["path"])
        verdict = rec.get("verdict") or {}
        label = verdict.get("label") or "unknown"
        info = rec.get("info") or {}
        status = rec.get("status") or "ok"
        res = _results(rec)
        cells = [
            f'<td class="file" data-sort="{_e(_shown(path, root))}"><a href="#f{i}">{_e(_shown(path, root))}</a>'
            + _why(rec)
            + "</td>",
            f'<td class="{_e(label)}" data-sort="{_e(label)}">{_e(label)}</td>',
            f'<td class="num" data-sort="{_sort(verdict.get("score"))}">{_num(verdict.get("score"))}</td>',
            f'<td data-sort="{_sort(verdict.get("detector"))}">{_e(verdict.get("detector") or "")}'
            f" {_e(_span(verdict.get('span')))}</td>",
        ]
        for d in detectors:
            r = res.get(d)
            if r is None:
                cells.append(f'<td data-det="{_e(d)}" data-status="" data-sort=""></td>')
            elif r.get("status") == "ok":
                mark = " ⚑" if r.get("label") else ""
                cells.append(
                    f'<td class="num" data-det="{_e(d)}" data-status="ok" data-sort="{_sort(r.get("score"))}"'
                    f' title="{_e(r.get("weights"))}">{_num(r.get("score"))}{mark}</td>'
                )
            else:
                st = _e(r.get("status"))
                cells.append(
                    f'<td class="{st}" data-det="{_e(d)}" data-status="{st}" data-sort=""'
                    f' title="{_e(r.get("reason"))}">{st}</td>'
                )
        cells += [
            f'<td data-sort="{_sort(info.get("kind"))}">{_e(info.get("kind") or "")}</td>',
            f'<td class="num" data-sort="{_sort(info.get("duration"))}">{_num(info.get("duration"), 2)}</td>',
        ]
        cid = (clusters.get(path) or {}).get("cluster")
        if clusters:
            cells.append(f'<td class="num" data-sort="{_sort(cid)}"><a href="#c{_sort(cid)}">{_sort(cid)}</a></td>')
        body.append(
            f'<tr id="row{i}" data-verdict="{_e(label)}" data-status="{_e(status)}" data-cluster="{_sort(cid)}"'
            f' data-name="{_e(path.lower())}">{"".join(cells)}</tr>'
        )
    return (
        f'<table id="files"><thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody></table>"
    )


def _why(rec: dict[str, Any]) -> str:
    """Why a file has no score: its own error, else the detectors' skip/error reasons."""
    if (rec.get("status") or "ok") != "ok" and rec.get("reason"):
        return f'<div class="error">{_e(rec["reason"])}</div>'
    verdict = rec.get("verdict") or {}
    if verdict.get("label") == "unknown" and verdict.get("reason"):
        return f'<div class="skipped">{_e(verdict["reason"])}</div>'
    return ""


def _detail(i: int, rec: dict[str, Any], colours: dict[str, str], root: str) -> str:
    path = str(rec["path"])
    info = rec.get("info") or {}
    verdict = rec.get("verdict") or {}
    label = verdict.get("label") or "unknown"
    facts = {
        "verdict": f"{label} {_num(verdict.get('score'))} {verdict.get('detector') or ''} {_span(verdict.get('span'))}",
        "why": verdict.get("reason"),
        "file status": rec.get("status") or "ok",
        "file error": rec.get("reason") if rec.get("reason") != verdict.get("reason") else None,
        "kind": " / ".join(str(info[k]) for k in ("kind", "format", "video_codec", "audio_codec") if info.get(k)),
        "duration": f"{_num(info.get('duration'), 2)} s" if info.get("duration") else None,
        "size": f"{info.get('width')} × {info.get('height')}" if info.get("width") else None,
        "sha256": rec.get("sha256"),
        "duplicate of": rec.get("duplicate_of"),
    }
    out = [
        f'<section class="detail" id="f{i}"><h3 class="file">{_e(_shown(path, root))}</h3>',
        _dl({k: v for k, v in facts.items() if v}),
    ]
    rows = []
    for r in rec.get("results") or []:
        st = str(r.get("status"))
        top = max(r.get("segments") or [], key=lambda s: s.get("score", 0.0), default=None)
        note = _e(r.get("reason")) if st != "ok" else ("⚑ over threshold" if r.get("label") else "")
        rows.append(
            f'<tr><td><span style="color:{colours.get(str(r.get("detector")), "#000")}">■</span>'
            f" {_e(r.get('detector'))}</td><td><code>{_e(r.get('weights') or '')}</code></td>"
            f'<td class="{_e(st)}">{_e(st)}</td><td class="num">{_num(r.get("score"))}</td>'
            f'<td class="num">{_num(r.get("threshold"))}</td>'
            f"<td>{_e(_span((top['start'], top['end'])) if top else '')}</td>"
            f'<td class="num">{len(r.get("segments") or [])}</td><td class="num">{_num(r.get("elapsed_s"), 2)}</td>'
            f"<td>{note}</td></tr>"
        )
    if rows:
        out.append(
            "<table><thead><tr><th>detector</th><th>weights</th><th>status</th><th>score</th><th>threshold</th>"
            "<th>top span</th><th>units</th><th>seconds</th><th>note</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    for r in rec.get("results") or []:
        if r.get("evidence"):
            out.append(f"<p>evidence of {_e(r.get('detector'))}:</p>" + _value(r["evidence"]))
    out.append(_timeline(rec, colours))
    out.append("</section>")
    return "\n".join(out)


def _dl(facts: dict[str, Any]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items()) + "</dl>"


def _value(v: Any, depth: int = 0) -> str:
    """Evidence of any shape as escaped nested lists; long lists and deep nesting are truncated."""
    if isinstance(v, dict) and depth < 3:
        return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_value(x, depth + 1)}</dd>" for k, x in v.items()) + "</dl>"
    if isinstance(v, list) and depth < 3 and any(isinstance(x, (dict, list)) for x in v):
        more = f"<li>… {len(v) - 8} more</li>" if len(v) > 8 else ""
        return "<ol>" + "".join(f"<li>{_value(x, depth + 1)}</li>" for x in v[:8]) + more + "</ol>"
    if isinstance(v, float):
        return _e(f"{v:.4g}")
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return _e(text if len(text) <= 400 else text[:400] + "…")


# -- timelines ------------------------------------------------------------------------------


def _series(segments: list[dict[str, Any]], by_index: bool) -> list[tuple[float, float, float]]:
    """``(x0, x1, score)`` per segment (unit index for images), max-pooled into at most MAX_POINTS bins."""
    pts = [
        (float(i), float(i + 1), float(s["score"])) if by_index else (float(s["start"]), float(s["end"]), s["score"])
        for i, s in enumerate(segments)
    ]
    if len(pts) <= MAX_POINTS:
        return pts
    lo, hi = min(p[0] for p in pts), max(p[1] for p in pts)
    width = (hi - lo) / MAX_POINTS or 1.0
    bins: dict[int, tuple[float, float, float]] = {}
    for x0, _, s in pts:
        b = min(int((x0 - lo) / width), MAX_POINTS - 1)
        if b not in bins or s > bins[b][2]:
            bins[b] = (lo + b * width, lo + (b + 1) * width, s)
    return [bins[b] for b in sorted(bins)]


def _ticks(hi: float) -> list[float]:
    step = 10 ** math.floor(math.log10(hi / 4)) if hi > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if hi / (step * mult) <= 8:
            step *= mult
            break
    return [k * step for k in range(int(hi / step) + 1)]


def _timeline(rec: dict[str, Any], colours: dict[str, str]) -> str:
    scored = [r for r in rec.get("results") or [] if r.get("status") == "ok" and r.get("segments")]
    if not scored:
        return ""
    by_index = (rec.get("info") or {}).get("kind") == "image"
    series = {str(r["detector"]): _series(r["segments"], by_index) for r in scored}
    hi = max([x1 for s in series.values() for _, x1, _ in s] + [(rec.get("info") or {}).get("duration") or 0.0])
    hi = hi if hi > 0 else 1.0
    w, h, left, right, top, bottom = 720, 170, 40, 10, 10, 30
    pw, ph = w - left - right, h - top - bottom

    def sx(x: float) -> float:
        return left + pw * x / hi

    def sy(y: float) -> float:
        return top + ph * (1.0 - min(max(y, 0.0), 1.0))

    svg = [
        f'<svg class="timeline" width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"'
        ' role="img" font-size="10" font-family="sans-serif">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for y in (0.0, 0.5, 1.0):
        svg.append(f'<text x="{left - 4}" y="{sy(y) + 3:.1f}" text-anchor="end">{y:g}</text>')
    for x in _ticks(hi):
        svg.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#999"/>')
        svg.append(f'<text x="{sx(x):.1f}" y="{top + ph + 15}" text-anchor="middle">{x:g}</text>')
    svg.append(
        f'<text x="{left + pw / 2}" y="{h - 2}" text-anchor="middle">{"unit" if by_index else "time (s)"}</text>'
    )
    legend = []
    for r in scored:
        d = str(r["detector"])
        c = colours.get(d, "#000")
        if r.get("threshold") is not None:
            t = sy(float(r["threshold"]))
            svg.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{t:.1f}" y2="{t:.1f}" stroke="{c}" stroke-dasharray="5,4"/>'
            )
        # One horizontal bar per unit (its span at its score); round caps keep instants visible as dots.
        bars = "".join(f"M{sx(x0):.0f} {sy(s):.0f}H{sx(x1):.0f}" for x0, x1, s in series[d])
        svg.append(
            f'<path class="series" d="{bars}" stroke="{c}" stroke-width="3" stroke-linecap="round" fill="none">'
            f"<title>{_e(d)}</title></path>"
        )
        legend.append(
            f'<span><span style="color:{c}">■</span> {_e(d)} (threshold {_num(r.get("threshold"))},'
            f" <code>{_e(r.get('weights') or '')}</code>)</span>"
        )
    svg.append("</svg>")
    return "".join(svg) + '<div class="legend">' + "".join(legend) + " <span>dashed: threshold</span></div>"


# -- thumbnails ------------------------------------------------------------------------------


def _gallery(records: list[dict[str, Any]], n: int, media_root: Path | None, root: str) -> str:
    """The ``n`` most suspicious (file, detector) frames, as :func:`~forensics.report.explain.explain` gives them."""
    figures = []
    for ex in explain(records, n, media_root=media_root, root=root):
        r, seg, path = ex.result, ex.segment, records[ex.index]["path"]
        where = _span((seg["start"], seg["end"]))
        caption = (
            f"{_shown(path, root)}\n{r.get('detector')} {float(seg['score']):.3f} at {where}\n{r.get('weights') or ''}"
        )
        if ex.note:
            caption += f"\n{ex.note}"
        svg = _thumbnail(ex.frame, seg.get("box"), ex.heat)
        figures.append(f'<figure><a href="#f{ex.index}">{svg}</a><figcaption>{_e(caption)}</figcaption></figure>')
    if not figures:
        return ""
    return (
        "<h2>Most suspicious frames</h2>"
        '<p class="muted">Boxes: the scored face. Overlay: the detector\'s heatmap, where it provides one.</p>'
        f'<div class="gallery">{"".join(figures)}</div>'
    )


def _thumbnail(img: np.ndarray, box: Any, heat: np.ndarray | None) -> str:
    """An inline SVG: the frame (downscaled), the unit's box, and the heatmap over the box if any."""
    import cv2

    h, w = img.shape[:2]
    scale = min(1.0, THUMB_WIDTH / w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    parts = [
        f'<svg class="thumb" width="{tw}" height="{th}" viewBox="0 0 {tw} {th}" xmlns="http://www.w3.org/2000/svg">',
        f'<image width="{tw}" height="{th}" href="{_data_uri(img, (tw, th), "JPEG")}"/>',
    ]
    bx = [float(v) * scale for v in box] if box and len(box) == 4 else [0.0, 0.0, float(tw), float(th)]
    bw, bh = max(bx[2] - bx[0], 1.0), max(bx[3] - bx[1], 1.0)
    if heat is not None:
        rgb = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        overlay = np.dstack([rgb, (heat * 160).astype(np.uint8)])  # alpha follows the heat
        uri = _data_uri(overlay, (max(1, round(bw)), max(1, round(bh))), "PNG")
        parts.append(
            f'<image class="heatmap" x="{bx[0]:.1f}" y="{bx[1]:.1f}" width="{bw:.1f}" height="{bh:.1f}"'
            f' preserveAspectRatio="none" href="{uri}"/>'
        )
    if box:
        parts.append(
            f'<rect x="{bx[0]:.1f}" y="{bx[1]:.1f}" width="{bw:.1f}" height="{bh:.1f}"'
            ' fill="none" stroke="#ff0" stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _data_uri(img: np.ndarray, size: tuple[int, int], fmt: str) -> str:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(img)).resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"
