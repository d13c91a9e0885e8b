"""Results as tables: one row per file and detector (pandas), CSV and Parquet exports.

Provenance columns (``prov_*``) come from each record; cluster columns from the clusters sidecar
``results.clusters.jsonl`` that ``forensics cluster results.jsonl`` writes beside the results (empty
when it has not been run, or for files scanned since).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forensics.records import read_records
from forensics.triage.cluster import CLUSTER_COLUMNS, cluster_columns, sidecar
from forensics.triage.provenance import PROVENANCE_COLUMNS, provenance_columns

COLUMNS = [
    "path", "sha256", "kind", "duration", "file_status", "verdict", "verdict_score", "verdict_detector",
    "detector", "weights", "status", "score", "label", "threshold", "top_start", "top_end", "n_segments",
    "reason", "elapsed_s", *PROVENANCE_COLUMNS, *CLUSTER_COLUMNS,
]  # fmt: skip


def rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten one file record into rows (one per detector; one row with no detector if none ran)."""
    info = record.get("info") or {}
    verdict = record.get("verdict") or {}
    base = {
        "path": record["path"],
        "sha256": record.get("sha256"),
        "kind": info.get("kind"),
        "duration": info.get("duration"),
        "file_status": record.get("status", "ok"),
        "verdict": verdict.get("label"),
        "verdict_score": verdict.get("score"),
        "verdict_detector": verdict.get("detector"),
    } | provenance_columns(record.get("provenance"))
    out = []
    for r in record.get("results") or []:
        segs = r.get("segments") or []
        top = max(segs, key=lambda s: s["score"]) if segs else None
        out.append(
            base
            | {
                "detector": r["detector"],
                "weights": r.get("weights"),
                "status": r["status"],
                "score": r.get("score"),
                "label": r.get("label"),
                "threshold": r.get("threshold"),
                "top_start": top["start"] if top else None,
                "top_end": top["end"] if top else None,
                "n_segments": len(segs),
                "reason": r.get("reason"),
                "elapsed_s": r.get("elapsed_s"),
            }
        )
    if not out:
        out.append(base | {"detector": None, "status": record.get("status", "error"), "reason": record.get("reason")})
    return out


def frame(records: Iterable[dict[str, Any]]) -> Any:
    """A DataFrame with one row per file and detector from result records."""
    import pandas as pd

    return pd.DataFrame([row for rec in records for row in rows(rec)], columns=COLUMNS)


def load_results(path: str | Path) -> Any:
    """A DataFrame with one row per file and detector from a results JSONL, with its clusters when
    ``forensics cluster`` has written them."""
    df = frame(read_records(Path(path)))
    side = sidecar(path)
    if side.exists() and len(df):
        by_path = {row["path"]: row for row in read_records(side)}
        for col, values in cluster_columns(df["path"], by_path).items():
            df[col] = values
    return df


def export(results: str | Path | Any, out: str | Path) -> Path:
    """Write the table of a results JSONL (or a :func:`frame`) as ``.csv`` or ``.parquet`` (by ``out``'s extension)."""
    out = Path(out)
    df = load_results(results) if isinstance(results, (str, Path)) else results
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        df.to_csv(out, index=False)
    else:
        raise ValueError(f"unknown export format {out.suffix!r}: use .csv or .parquet")
    return out
