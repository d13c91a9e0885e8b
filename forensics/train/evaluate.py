"""Generic evaluation of any detector on labelled media: unit- and file-level metrics, by source,
after platform-style re-encoding, with ROC/DET/histogram plots and a JSON of the numbers."""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors import create_detector
from forensics.errors import ForensicsError, SkipDetection
from forensics.media import open_media
from forensics.progress import Progress, ProgressEvent
from forensics.train.metrics import summarize
from forensics.train.reencode import VARIANTS, applies, default_variants, reencode


@dataclass
class Sample:
    path: Path
    label: int  # 1 = fake
    source: str = ""
    group: str = ""  # files of one group (video, speaker) are never split apart


def _label(value: str) -> int:
    v = value.strip().lower()
    if v in ("1", "fake", "true", "manipulated", "spoof"):
        return 1
    if v in ("0", "real", "false", "bonafide", "pristine"):
        return 0
    raise ForensicsError(f"unknown label {value!r}: use real/fake or 0/1")


def collect(real: list[Path] | None = None, fake: list[Path] | None = None, table: Path | None = None) -> list[Sample]:
    """Samples from real/fake folders (source = first sub-folder, else the folder name) or a CSV
    with columns ``path,label[,source]`` (paths relative to the CSV's folder)."""
    from forensics.scan import discover

    out: list[Sample] = []
    for label, roots in ((0, real or []), (1, fake or [])):
        for root in roots:
            root = Path(root)
            if not root.exists():
                raise ForensicsError(f"no such folder: {root}")
            for f in discover(root):
                rel = f.relative_to(root) if root.is_dir() else Path(f.name)
                src = rel.parts[0] if len(rel.parts) > 1 else root.name
                out.append(Sample(f, label, src, str(f)))
    if table is not None:
        with open(table, newline="") as fh:
            for row in csv.DictReader(fh):
                p = Path(row["path"])
                p = p if p.is_absolute() else Path(table).parent / p
                out.append(Sample(p, _label(row["label"]), row.get("source", "") or "", row.get("group", "") or str(p)))
    return out


def score_files(
    detector: Any, samples: list[Sample], progress: Progress | None = None, *, variant: str = "original"
) -> list[dict[str, Any]]:
    """Per file: unit logits and probabilities, file score, or a status when nothing was scored."""
    rows = []
    for i, s in enumerate(samples, 1):
        row: dict[str, Any] = {"path": str(s.path), "label": s.label, "source": s.source, "group": s.group}
        try:
            units, logits = detector.decision_function(s.path)
            score, probs = detector.file_score(logits, [u.track for u in units])
            row |= {"status": "ok", "logits": logits.tolist(), "probs": probs.tolist(), "score": score}
        except SkipDetection as exc:
            row |= {"status": "skipped", "reason": str(exc)}
        except (ForensicsError, OSError, ValueError, RuntimeError) as exc:
            row |= {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        if progress:
            progress(ProgressEvent("score", i, len(samples), s.path, info={"variant": variant}))
    return rows


def metrics_from_rows(rows: list[dict[str, Any]], fpr: float = 0.01) -> dict[str, Any]:
    """Unit-level and file-level metrics, plus file-level per fake source against all reals."""
    ok = [r for r in rows if r["status"] == "ok"]
    file_y = np.array([r["label"] for r in ok])
    file_s = np.array([r["score"] for r in ok])
    unit_y = np.concatenate([[r["label"]] * len(r["probs"]) for r in ok]) if ok else np.zeros(0)
    unit_s = np.concatenate([r["probs"] for r in ok]) if ok else np.zeros(0)
    out: dict[str, Any] = {
        "files": {
            "ok": len(ok),
            "skipped": sum(r["status"] == "skipped" for r in rows),
            "error": sum(r["status"] == "error" for r in rows),
        },
        "unit": summarize(unit_y, unit_s, fpr),
        "file": summarize(file_y, file_s, fpr),
        "by_source": {},
    }
    reals = [r for r in ok if r["label"] == 0]
    for src in sorted({r["source"] for r in ok if r["label"] == 1}):
        fakes = [r for r in ok if r["label"] == 1 and r["source"] == src]
        y = np.r_[np.zeros(len(reals)), np.ones(len(fakes))]
        s = np.r_[[r["score"] for r in reals], [r["score"] for r in fakes]]
        out["by_source"][src] = summarize(y, s, fpr)
    return out


def plot(rows: list[dict[str, Any]], out_dir: Path, title: str) -> list[Path]:
    """ROC and DET curves and a score histogram (file level) as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm
    from sklearn.metrics import roc_curve

    ok = [r for r in rows if r["status"] == "ok"]
    y = np.array([r["label"] for r in ok])
    s = np.array([r["score"] for r in ok])
    paths = []
    if len(np.unique(y)) < 2:
        return paths
    fpr, tpr, _ = roc_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"ROC — {title}")
    paths.append(out_dir / f"roc_{title}.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    eps = 1e-4
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(norm.ppf(np.clip(fpr, eps, 1 - eps)), norm.ppf(np.clip(1 - tpr, eps, 1 - eps)))
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8]
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set(xlabel="false-positive rate", ylabel="false-negative rate", title=f"DET — {title}")
    paths.append(out_dir / f"det_{title}.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(0, 1, 26)
    ax.hist(s[y == 0], bins=bins, alpha=0.6, label="real")
    ax.hist(s[y == 1], bins=bins, alpha=0.6, label="fake")
    ax.set(xlabel="file score P(fake)", ylabel="files", title=f"scores — {title}")
    ax.legend()
    paths.append(out_dir / f"hist_{title}.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def evaluate(
    detector: str | Any,
    samples: list[Sample],
    *,
    weights: str | None = None,
    variants: tuple[str, ...] | None = None,
    out_dir: Path | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Metrics for ``detector`` on ``samples``, for each re-encoding variant; writes plots and JSON to ``out_dir``."""
    det = create_detector(detector, weights, device=device) if isinstance(detector, str) else detector
    det.load()
    if not samples:
        raise ForensicsError("no samples to evaluate")
    if variants is None:
        variants = default_variants(det.spec)
    if unknown := [v for v in variants if v not in VARIANTS]:
        raise ForensicsError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    report: dict[str, Any] = {"detector": det.spec.name, "weights": det.weights_id, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            vs: list[Sample] = []
            failed: list[dict[str, Any]] = []  # a file that cannot be re-encoded is an error, not its original
            not_applicable = 0  # files the variant does not change (an image for aac64): left out of it
            for s in samples:
                try:
                    if v != "original" and not applies(v, open_media(s.path).info):
                        not_applicable += 1
                        continue
                    vs.append(Sample(reencode(s.path, Path(tmp) / v, v), s.label, s.source, s.group))
                except (ForensicsError, OSError, ValueError) as exc:
                    failed.append({"path": str(s.path), "label": s.label, "source": s.source, "group": s.group,
                                   "status": "error", "reason": f"re-encoding as {v} failed: {exc}"})  # fmt: skip
            rows = score_files(det, vs, progress, variant=v) + failed
            report["variants"][v] = metrics_from_rows(rows)
            report["variants"][v]["not_applicable"] = not_applicable
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                report["variants"][v]["plots"] = [str(p) for p in plot(rows, out_dir, f"{det.spec.name}_{v}")]
                with open(out_dir / f"scores_{det.spec.name}_{v}.jsonl", "w") as fh:
                    for r in rows:
                        fh.write(json.dumps({k: r[k] for k in r if k not in ("logits", "probs")}) + "\n")
    if out_dir is not None:
        (out_dir / f"metrics_{det.spec.name}.json").write_text(json.dumps(report, indent=2))
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the metrics."""
    lines = [f"{report['detector']}  weights {report['weights']}"]
    head = f"{'variant':<9} {'level':<6} {'n_real':>6} {'n_fake':>6} {'AUC':>6} {'EER':>6} {'AP':>6} {'TPR@1%':>7}"
    lines.append(head)
    for v, m in report["variants"].items():
        for level in ("unit", "file"):
            x = m[level]
            nums = " ".join(f"{x.get(k, float('nan')):>6.3f}" for k in ("auc", "eer", "ap", "tpr@0.01fpr"))
            lines.append(f"{v:<9} {level:<6} {x['n_real']:>6} {x['n_fake']:>6} {nums}")
        for src, x in m["by_source"].items():
            lines.append(
                f"{v:<9} {'src':<6} {x['n_real']:>6} {x['n_fake']:>6} {x.get('auc', float('nan')):>6.3f}  {src}"
            )
        f = m["files"]
        na = f", {m['not_applicable']} left out (the variant does not apply)" if m.get("not_applicable") else ""
        lines.append(f"{v:<9} files: {f['ok']} scored, {f['skipped']} skipped, {f['error']} errors{na}")
    return "\n".join(lines)
