"""The report's campaign view: near-duplicate clusters as rows (thumbnail strip, highest scores, provenance),
and a timeline of files by the date they were first seen, coloured by verdict.

Clusters come from the sidecar ``forensics cluster`` wrote beside the results, else they are computed here
from the records' fingerprints; records without fingerprints (older scans) give no campaign view.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from forensics.records import read_records
from forensics.triage.cluster import cluster_records, sidecar
from forensics.triage.provenance import provenance_columns

VERDICT_COLOURS = {"fake": "#d62728", "real": "#2ca02c", "unknown": "#999999"}
STRIP = 4  # thumbnails per cluster
STRIP_CLUSTERS = 40  # clusters (largest first) that get a thumbnail strip
STRIP_WIDTH = 96


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def clusters_of(records: list[dict[str, Any]], results: Path) -> dict[str, dict[str, Any]]:
    """Cluster rows by path: the sidecar's when it covers these records, else computed from their fingerprints."""
    side = sidecar(results)
    if side.exists():
        rows = {r["path"]: r for r in read_records(side)}
        if all(rec["path"] in rows for rec in records):
            return rows
    if not any(rec.get("fingerprint") for rec in records):
        return {}
    return {r["path"]: r for r in cluster_records(records)}


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


def campaign_view(
    records: list[dict[str, Any]],
    rows: dict[str, dict[str, Any]],
    index: dict[str, int],
    shown: Any,
    thumb: Any,
    media_root: Path | None,
) -> str:
    """The campaign section: ``rows`` are cluster rows by path, ``index`` each path's detail anchor number,
    ``shown`` renders a path for display, ``thumb(path, media_root)`` gives an inline thumbnail or ''."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for rec in records:
        row = rows.get(rec["path"])
        if row is not None:
            groups.setdefault(int(row["cluster"]), []).append(rec)
    multi = sorted((g for g in groups.items() if len(g[1]) > 1), key=lambda g: (-len(g[1]), g[0]))
    singles = sum(1 for g in groups.values() if len(g) == 1)
    body = []
    for rank, (cid, members) in enumerate(multi):
        earliest = rows[members[0]["path"]]["earliest"]
        first = rows.get(earliest, {})
        scored = [m for m in members if (m.get("verdict") or {}).get("score") is not None]
        top = max(scored, key=lambda m: m["verdict"]["score"], default=None)
        labels = [(m.get("verdict") or {}).get("label") or "unknown" for m in members]
        counts = {k: labels.count(k) for k in ("fake", "real", "unknown") if labels.count(k)}
        prov = _provenance(members)
        strip = ""
        if rank < STRIP_CLUSTERS:
            ordered = sorted(members, key=lambda m: m["path"] != earliest)[:STRIP]
            strip = "".join(thumb(m["path"], media_root) for m in ordered)
        top_score = top["verdict"]["score"] if top else None
        links = "".join(
            f'<li><a href="#f{index[m["path"]]}">{_e(shown(m["path"]))}</a>'
            f' <span class="{_e(lab)}">{_e(lab)}</span> {_e(rows[m["path"]].get("date") or "")}'
            f" ({_e(rows[m['path']].get('date_source') or 'no date')})"
            + (f" · {_e(rows[m['path']]['matched_by'])}" if rows[m["path"]].get("matched_by") else "")
            + "</li>"
            for m, lab in zip(members, labels, strict=True)
        )
        names = " ".join(m["path"].lower() for m in members)
        body.append(
            f'<tr class="cluster" id="c{cid}" data-cluster="{cid}" data-fake="{int("fake" in counts)}"'
            f' data-name="{_e(names)}" tabindex="0">'
            f'<td class="num" data-sort="{cid}">{cid}</td>'
            f'<td class="num" data-sort="{len(members)}">{len(members)}</td>'
            f'<td class="file" data-sort="{_e(shown(earliest))}">{_e(shown(earliest))}<div class="muted">'
            f"{_e(first.get('date') or 'no date')} ({_e(first.get('date_source') or '-')})</div></td>"
            f'<td class="num" data-sort="{top_score if top_score is not None else ""}">'
            f"{'' if top is None else f'{top_score:.3f} ' + _e(top['verdict'].get('detector') or '')}</td>"
            f'<td data-sort="{counts.get("fake", 0)}">'
            + " ".join(f'<span class="{k}">{k} {n}</span>' for k, n in counts.items())
            + f'</td><td data-sort="{_e(prov)}">{_e(prov)}</td><td class="strip" data-sort="">{strip}</td></tr>'
            f'<tr class="members" data-members="{cid}" hidden><td colspan="7"><ul>{links}</ul></td></tr>'
        )
    if not groups:
        return ""
    head = "".join(
        f'<th data-type="{t}">{_e(n)}</th>'
        for n, t in (("cluster", "num"), ("files", "num"), ("earliest seen", "str"), ("highest score", "num"),
                     ("verdicts", "num"), ("provenance", "str"), ("thumbnails", "str"))
    )  # fmt: skip
    return (
        "<h2>Campaign</h2>"
        f'<p class="muted">{len(multi)} clusters of re-uploads (same video, image or sound), {singles} files with no'
        " copy. A cluster's row opens its files and filters the file table to them. Earliest seen: container"
        " or EXIF creation time, else a date in the name, else the file time (as stated).</p>"
        '<div class="controls"><label>cluster files <input id="cq" type="search" placeholder="filter by name">'
        '</label><label><input id="cfake" type="checkbox"> only clusters with a fake</label>'
        '<span id="ccount"></span></div>'
        f'<table id="clusters"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        + _timeline(records, rows, index, shown)
    )


def _provenance(members: list[dict[str, Any]]) -> str:
    """The provenance the cluster's files declare, summarised (tools, C2PA, watermarks, source types)."""
    seen: dict[str, None] = {}
    for m in members:
        cols = provenance_columns(m.get("provenance"))
        for key in ("prov_software", "prov_c2pa", "prov_watermark", "prov_digital_source_type"):
            if cols[key]:
                seen.setdefault(f"{key.removeprefix('prov_')}: {cols[key]}", None)
    return "; ".join(seen)


def _timeline(records: list[dict[str, Any]], rows: dict[str, dict[str, Any]], index: dict[str, int], shown: Any) -> str:
    """Files by first-seen date (x) and cluster (y, largest first), coloured by verdict."""
    dated = [(rec, _date(rows.get(rec["path"], {}).get("date"))) for rec in records if rec["path"] in rows]
    points = [(rec, t) for rec, t in dated if t is not None]
    if not points:
        return ""
    sizes: dict[int, int] = {}
    for rec, _ in points:
        c = int(rows[rec["path"]]["cluster"])
        sizes[c] = sizes.get(c, 0) + 1
    order = {c: i for i, c in enumerate(sorted(sizes, key=lambda c: (-sizes[c], c))[:30])}
    lo, hi = min(t for _, t in points), max(t for _, t in points)
    width, left, row_h = 900, 60, 14
    height = 30 + row_h * (len(order) + 1)

    def x(t: float) -> float:
        return left + (width - left - 10) * ((t - lo) / (hi - lo) if hi > lo else 0.5)

    marks = []
    for rec, t in points:
        c = int(rows[rec["path"]]["cluster"])
        y = 20 + row_h * order.get(c, len(order))
        label = (rec.get("verdict") or {}).get("label") or "unknown"
        title = f"{shown(rec['path'])}\n{label}  {datetime.fromtimestamp(t, UTC).isoformat(timespec='seconds')}"
        marks.append(
            f'<a href="#f{index[rec["path"]]}"><circle class="dot" data-verdict="{_e(label)}" cx="{x(t):.1f}"'
            f' cy="{y}" r="4" fill="{VERDICT_COLOURS.get(label, "#999")}"><title>{_e(title)}</title></circle></a>'
        )
    labels = "".join(f'<text x="4" y="{24 + row_h * i}" font-size="10">#{c}</text>' for c, i in order.items()) + (
        f'<text x="4" y="{24 + row_h * len(order)}" font-size="10">other</text>' if len(sizes) > len(order) else ""
    )
    ends = (
        f'<text x="{left}" y="{height - 4}" font-size="10">{_e(_day(lo))}</text>'
        f'<text x="{width - 10}" y="{height - 4}" font-size="10" text-anchor="end">{_e(_day(hi))}</text>'
    )
    legend = " ".join(f'<span style="color:{c}">● {k}</span>' for k, c in VERDICT_COLOURS.items())
    undated = len(dated) - len(points)
    return (
        "<h3>Timeline</h3>"
        f'<p class="legend">{legend}'
        + (f' <span class="muted">{undated} files without a date are not shown.</span>' if undated else "")
        + "</p>"
        f'<svg id="campaign-timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' xmlns="http://www.w3.org/2000/svg">{labels}{"".join(marks)}{ends}</svg>'
    )


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def thumbnail_of(path: str, media_root: Path | None, data_uri: Any) -> str:
    """A small inline thumbnail of a file's middle frame, or '' when it cannot be read."""
    from forensics.errors import ForensicsError
    from forensics.media import open_media

    p = Path(path)
    if not p.exists() and media_root is not None:
        p = media_root / (p.name if p.is_absolute() else p)
    try:
        media = open_media(p)
        frame = media.frames(n=1)[0].image if media.info.kind != "audio" else None
    except (ForensicsError, OSError, IndexError, ValueError):
        return ""
    if frame is None:
        return ""
    h, w = frame.shape[:2]
    th = max(1, round(h * STRIP_WIDTH / w))
    uri = data_uri(frame, (STRIP_WIDTH, th), "JPEG")
    return f'<img class="thumb" alt="{_e(os.path.basename(path))}" width="{STRIP_WIDTH}" height="{th}" src="{uri}">'
