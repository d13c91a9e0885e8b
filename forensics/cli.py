"""The ``forensics`` command: argument parsing, progress bars and tables. No logic lives here.

Exit codes of ``forensics scan``: 0 = every file scanned, none flagged; 1 = at least one file
flagged as fake; 4 = at least one file could not be scanned (error status); 5 = both;
2 = usage or configuration error (bad detector or weights name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_FLAGGED, EXIT_USAGE, EXIT_ERRORS = 1, 2, 4


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# -- scan ------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> int:
    from forensics.errors import ForensicsError
    from forensics.media import Limits
    from forensics.records import read_records
    from forensics.report import export, frame
    from forensics.scan import Isolation, build_detectors, default_workers, scan

    con = _console()
    out = Path(args.output)
    try:  # a file's problem is its record; what raises here is configuration (weights, profiles, engine)
        dets = build_detectors(args.detectors, weights=args.weights, device=args.device, persons=args.person)
        with _progress_bar(con, disable=args.quiet) as bar:
            progress = _render(bar, con)
            iso = None
            if args.workers != 0 and args.engine == "local":
                iso = Isolation(args.workers or default_workers(), timeout_s=args.timeout, memory_mb=args.memory_mb)
            limits = Limits(max_bytes=args.max_bytes)
            for _ in scan(args.paths, detectors=dets, output=out, resume=not args.no_resume, progress=progress,
                          isolation=iso, engine=args.engine, address=args.address, limits=limits):  # fmt: skip
                pass  # each report is already appended to the results file
    except ForensicsError as exc:
        con.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    records = list(read_records(out))  # read once for the exports, the summary and the exit code
    table = frame(records)
    for target in filter(None, [args.csv, args.parquet]):
        export(table, target)
        con.print(f"wrote {target}")
    if args.html:
        from forensics.report.html import write_html

        con.print(f"wrote {write_html(out, Path(args.html), blur=args.blur_thumbnails)}")
    _summary(table, out, con)
    code = 0
    if any((r.get("verdict") or {}).get("label") == "fake" for r in records):
        code |= EXIT_FLAGGED
    if any(r.get("status") == "error" for r in records):
        code |= EXIT_ERRORS
    return code


def _summary(df: Any, results: Path, con: Any, top: int = 10) -> None:
    """Verdict counts, detector statuses and the most suspicious files of a results table."""
    from rich.table import Table

    if df.empty:
        con.print("no files scanned")
        return
    files = df.drop_duplicates("path")
    con.print(f"{len(files)} files in {results}")
    t = Table(title="verdicts")
    t.add_column("verdict")
    t.add_column("files", justify="right")
    for verdict, n in files["verdict"].value_counts().items():
        t.add_row(str(verdict), str(n))
    con.print(t)
    s = Table(title="detector results by status")
    s.add_column("detector")
    for st in ("ok", "skipped", "error"):
        s.add_column(st, justify="right")
    for det, g in df.dropna(subset=["detector"]).groupby("detector"):
        counts = g["status"].value_counts()
        s.add_row(str(det), *(str(int(counts.get(st, 0))) for st in ("ok", "skipped", "error")))
    con.print(s)
    sus = files.dropna(subset=["verdict_score"]).sort_values("verdict_score", ascending=False).head(top)
    if len(sus):
        m = Table(title="most suspicious files")
        for c in ("score", "verdict", "by", "file"):
            m.add_column(c)
        for _, r in sus.iterrows():
            m.add_row(f"{r.verdict_score:.3f}", str(r.verdict), str(r.verdict_detector), str(r.path))
        con.print(m)


def cmd_report(args: argparse.Namespace) -> int:
    from forensics.report.html import write_html

    path = write_html(
        Path(args.results), Path(args.output), thumbnails=args.thumbnails, media_root=args.media_root,
        blur=args.blur_thumbnails,
    )  # fmt: skip
    _console().print(f"wrote {path}")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from rich.table import Table

    from forensics.triage.cluster import cluster, sidecar

    con = _console()
    rows = cluster(args.results, out=args.output)
    sizes: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        sizes.setdefault(r["cluster"], []).append(r)
    multi = [g for g in sizes.values() if len(g) > 1]
    unprinted = sum(1 for r in rows if not r["fingerprinted"])
    con.print(f"{len(rows)} files, {len(sizes)} clusters, {len(multi)} with copies; wrote {sidecar(args.results)}")
    if unprinted:
        con.print(f"{unprinted} files have no fingerprint (scanned before fingerprints, or undecodable)")
    t = Table(title="largest clusters")
    for c in ("cluster", "files", "earliest", "seen", "by"):
        t.add_column(c)
    for g in sorted(multi, key=len, reverse=True)[: args.top]:
        first = next(r for r in g if r["is_earliest"])
        t.add_row(str(first["cluster"]), str(len(g)), str(first["path"]), str(first["date"]), str(first["date_source"]))
    con.print(t)
    if args.output:
        con.print(f"wrote {args.output}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from forensics.scan import analyze

    rep = analyze(args.path, detectors=args.detectors, weights=args.weights, device=args.device)
    print(json.dumps(rep.to_dict(), indent=2))
    return EXIT_FLAGGED if rep.verdict.label == "fake" else (EXIT_ERRORS if rep.status == "error" else 0)


# -- weights ---------------------------------------------------------------------------------


def cmd_weights(args: argparse.Namespace) -> int:
    from rich.table import Table

    from forensics import weights as W

    con = _console()
    if args.action == "list":
        from rich.console import Console

        from forensics.weights.published import PUBLISHED, calibration

        t = Table(title="weights")
        for c in ("name", "source", "status", "sha256", "threshold", "FPR", "licence", "training data"):
            t.add_column(c)
        for e in W.list_weights(args.detector):
            cal = calibration(e.name) if e.source == "published" else e.card.get("calibration", {})
            thr = f"{cal['threshold']:.4g}" if "threshold" in cal else "?"
            data = str(e.card.get("training_data", ""))[:50]
            source = "published" if e.name in PUBLISHED else e.source
            status = "available: weights get" if e.source == "published" else "installed"
            licence = "research only" if e.card.get("research_only") else str(e.card.get("licence", ""))[:20]
            t.add_row(e.name, source, status, e.sha256[:12], thr, str(cal.get("fpr")), licence, data)
        Console(width=180).print(t)
        return 0
    if args.action == "get":
        return _weights_get(args)
    if args.action == "info":
        reg = W.registry()  # a published entry not installed yet is described, not downloaded
        e = reg[args.name] if reg.get(args.name) and reg[args.name].source == "published" else W.resolve(args.name)
        print(json.dumps(dict(e.card, source=e.source, path=str(e.path)), indent=2))
        return 0
    if args.action == "verify":
        bad = 0
        for name, status in W.verify_all():
            print(f"{name}\t{status}")
            bad += status not in ("ok",) and not status.startswith(("remote", "published"))
        return EXIT_ERRORS if bad else 0
    if args.action == "import":
        path = W.import_checkpoint(args.file, detector=args.detector, tag=args.tag, converter=args.converter)
        con.print(f"imported as {args.detector}.{args.tag}: {path}")
        return 0
    return EXIT_USAGE


def _weights_get(args: argparse.Namespace) -> int:
    """Install published checkpoints: from their publishers, or (``--from``) from a folder of the original files."""
    from forensics.weights.published import install_from, install_published, licence_notice, published_entries

    con = _console()
    known = published_entries()
    if unknown := [n for n in args.names if n not in known]:
        con.print(f"[red]not a published checkpoint: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return EXIT_USAGE
    if args.source:
        done = install_from(args.source, args.names or None)
        missing = sorted(set(args.names or known) - set(done))
    else:
        if not args.names:
            con.print("[red]name the checkpoints to download (see `forensics weights list`), or use --from DIR")
            return EXIT_USAGE
        done = {n: install_published(n) for n in args.names}
        missing = []
    for name, path in done.items():
        con.print(f"installed {name}: {path}")
        if note := licence_notice(name):
            con.print(f"[yellow]licence: {note}")
    for name in missing:
        con.print(f"not found in {args.source}: {name} (sha256 {known[name].sha256[:12]}…)")
    if not done:
        return EXIT_ERRORS
    con.print("use one with --weights NAME; the default weights stay the shipped ones")
    return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    from forensics.detectors import get_detector_class, list_detectors

    for n in list_detectors():
        s = get_detector_class(n).spec
        r = s.finetune
        print(f"{n}\t{'/'.join(s.kinds)}\tunit={s.unit}\tdefault={n}.{s.default_weights}"
              f"\tfinetune: {r.epochs} epochs, lr {r.lr:g}, patience {r.patience}")  # fmt: skip
    return 0


# -- demo, evaluate, finetune, fingerprints --------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from forensics.train.demo import build_demo

    folder = Path(args.dir)
    _console().print(f"building demo media in {folder}/ (real photos shipped by scikit-image and matplotlib)")
    build_demo(folder)
    out = folder / "results.jsonl"
    if out.exists():
        out.unlink()
    scan_args = ["scan", str(folder), "-o", str(out), "--no-resume", "--workers", "0", "--device", args.device]
    scan_args += ["--html", str(folder / "report.html")] + (["--detectors", args.detectors] if args.detectors else [])
    code = cmd_scan(build_parser().parse_args(scan_args))
    _console().print(f"results: {out}; report: {folder / 'report.html'}")
    return 0 if code in (0, EXIT_FLAGGED, EXIT_ERRORS, EXIT_FLAGGED | EXIT_ERRORS) else code


def _progress_bar(con: Any, *, disable: bool = False) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*columns, TimeRemainingColumn(), console=con, disable=disable)


def _render(bar: Any, con: Any) -> Any:
    """The progress hook of scan, evaluate and finetune (:class:`forensics.progress.ProgressEvent`) drawn on
    one rich bar; a fine-tuning epoch's summary is printed as a line."""
    task = bar.add_task("starting", total=None)

    def progress(ev: Any) -> None:
        if ev.kind == "epoch":
            info = ev.info
            con.print(
                f"epoch {info['epoch']}: train loss {info.get('train_loss', 0):.4f}, val AUC {info['val_auc']:.3f}"
            )
            return
        if ev.kind == "train":
            desc = f"epoch {ev.info['epoch']} loss {ev.info['loss']:.3f}"
        elif ev.kind == "score":
            desc = f"{ev.info['variant']}: {ev.path.name[:30]}"
        else:
            desc = f"{ev.kind}: {ev.path.name[:40]}" if ev.path is not None else ev.kind
        bar.update(task, completed=ev.done, total=ev.total, description=desc)

    return progress


def cmd_evaluate(args: argparse.Namespace) -> int:
    from forensics.train.evaluate import collect, evaluate, format_report

    con = _console()
    samples = collect(real=args.real, fake=args.fake, table=args.csv)
    variants = tuple(args.variants.split(",")) if args.variants else None
    with _progress_bar(con) as bar:
        progress = _render(bar, con)
        report = evaluate(args.detector, samples, weights=args.weights, variants=variants,
                          out_dir=Path(args.out), device=args.device, progress=progress)  # fmt: skip
    print(format_report(report))
    con.print(f"metrics, scores and ROC/DET/histogram plots in {args.out}/")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from forensics.train.finetune import finetune

    con = _console()
    with _progress_bar(con) as bar:
        progress = _render(bar, con)
        path = finetune(args.detector, args.real, args.fake, weights=args.weights, tag=args.tag, epochs=args.epochs,
                        lr=args.lr, patience=args.patience, batch_size=args.batch_size, device=args.device,
                        progress=progress)  # fmt: skip
    con.print(f"wrote {path}; use it with --weights {args.detector}.{args.tag}")
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from forensics.detectors.gan_fingerprint import add_fingerprint, list_fingerprints

    if args.action == "add":
        path = add_fingerprint(args.name, args.folder, weights=args.weights)
        _console().print(f"fingerprint {args.name!r} stored in {path}")
        return 0
    for fp in list_fingerprints():
        print("\t".join(str(fp.get(k, "")) for k in ("name", "n_images", "weights", "status", "sha256", "file")))
    return 0


# -- person profiles ------------------------------------------------------------------------


def cmd_person(args: argparse.Namespace) -> int:
    from forensics import profiles as P

    con = _console()
    if args.action == "add":
        from forensics.detectors.identity import build_profile

        with _progress_bar(con) as bar:
            task = bar.add_task("embedding", total=None)

            def progress(i: int, n: int, path: Path) -> None:
                bar.update(task, completed=i, total=n, description=path.name[:40])

            folder = build_profile(args.name, args.paths, weights=args.weights, device=args.device,
                                   overwrite=args.replace, progress=progress)  # fmt: skip
        con.print(f"profile {args.name!r} stored in {folder}")
        args.action = "show"
    if args.action == "list":
        for name in P.list_profiles():
            card = P.load_profile(name).card
            mods = ", ".join(
                f"{m}: {s['n_units']} units / {s['n_sources']} files" for m, s in card["modalities"].items()
            )
            print(f"{name}\t{len(card['sources'])} files\t{mods}")
        return 0
    if args.action == "show":
        card = P.load_profile(args.name).card
        print(json.dumps(card, indent=2))
        return 0
    if args.action == "remove":
        P.remove_profile(args.name)
        con.print(f"removed profile {args.name!r}")
        return 0
    return EXIT_USAGE


# -- parser ----------------------------------------------------------------------------------


def _size(text: str) -> int:
    """Bytes from ``123``, ``500M``, ``16G`` or ``1.5T`` (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 16G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    from forensics import __version__

    p = argparse.ArgumentParser(prog="forensics", description="Deepfake media forensics.")
    p.add_argument("--version", action="version", version=f"forensics {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scan", help="scan files/folders, append one JSONL record per file (resumable)")
    s.add_argument("paths", nargs="+", help="files or folders (recursive)")
    s.add_argument("-o", "--output", default="results.jsonl", help="results JSONL (default: results.jsonl)")
    s.add_argument("--detectors", help="comma-separated detector names (default: all with weights)")
    s.add_argument("--weights", action="append", help="use these weights, e.g. face_swap.sbi_v2 (repeatable)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.add_argument(
        "--person",
        action="append",
        help="run identity against this registered person only (forensics person add; repeatable)",
    )
    s.add_argument("--no-resume", action="store_true", help="rescan files already in the results")
    s.add_argument("--csv", help="also export a table as CSV")
    s.add_argument("--parquet", help="also export a table as Parquet")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("--html", help="also write a self-contained HTML report")
    s.add_argument(
        "--blur-thumbnails",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blur every thumbnail and heatmap until clicked (default; a checkbox on the page turns it off)",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: one per core, RAM permitting); 0 = in this process, no isolation",
    )
    s.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per file (default 900)")
    s.add_argument("--memory-mb", type=int, default=6144, help="memory cap per worker in MB (default 6144)")
    s.add_argument(
        "--max-bytes",
        type=_size,
        default="16G",
        help="files larger than this get an error record, unread: bytes or with K/M/G/T (default 16G)",
    )
    s.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or a Ray cluster")
    s.add_argument("--address", help="Ray cluster address HOST:PORT (default: start a local Ray)")
    s.set_defaults(func=cmd_scan)

    r = sub.add_parser("report", help="write a self-contained HTML report of a results JSONL")
    r.add_argument("results", help="results JSONL written by `forensics scan`")
    r.add_argument("-o", "--output", default="report.html", help="HTML file (default: report.html)")
    r.add_argument("--thumbnails", type=int, default=12, help="most suspicious frames to show (default 12)")
    r.add_argument("--media-root", type=Path, help="where the media are now, if moved or recorded relative")
    r.add_argument(
        "--blur-thumbnails",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="blur every thumbnail and heatmap until clicked (default; a checkbox on the page turns it off)",
    )
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("cluster", help="group re-uploads of one content in a results JSONL (near-duplicate clusters)")
    c.add_argument("results", help="results JSONL written by `forensics scan`")
    c.add_argument("-o", "--output", help="also write the clusters as .csv or .jsonl")
    c.add_argument("--top", type=int, default=10, help="largest clusters to list (default 10)")
    c.set_defaults(func=cmd_cluster)

    a = sub.add_parser("analyze", help="score one file and print its report as JSON")
    a.add_argument("path")
    a.add_argument("--detectors")
    a.add_argument("--weights", action="append")
    a.add_argument("--device", default="cpu")
    a.set_defaults(func=cmd_analyze)

    w = sub.add_parser("weights", help="list, inspect, verify, get or import weights")
    wsub = w.add_subparsers(dest="action", required=True)
    wl = wsub.add_parser("list")
    wl.add_argument("--detector")
    wi = wsub.add_parser("info")
    wi.add_argument("name")
    wsub.add_parser("verify")
    wim = wsub.add_parser("import", help="convert a pickled checkpoint (tensors only) to safetensors + card")
    wim.add_argument("file")
    wim.add_argument("--detector", required=True)
    wim.add_argument("--tag", default="imported")
    wim.add_argument(
        "--converter",
        help="native (default: our own architectures), cnndetection, torchvision, efficientnet_pytorch or"
        " sbi_efficientnet_b4; add :fake_index=0 when output 0 of a 2-logit head means fake",
    )
    wg = wsub.add_parser(
        "get", help="download published checkpoints (verified by sha256, converted), or install them --from DIR"
    )
    wg.add_argument("names", nargs="*", help="published weights names (all found, with --from)")
    wg.add_argument("--from", dest="source", help="a folder of the original files (recognised by sha256): offline")
    w.set_defaults(func=cmd_weights)

    d = sub.add_parser("detectors", help="list registered detectors")
    d.set_defaults(func=cmd_detectors)

    dm = sub.add_parser("demo", help="build a small demo folder offline and scan it")
    dm.add_argument("--dir", default="forensics-demo", help="where to build it (default: ./forensics-demo)")
    dm.add_argument("--detectors")
    dm.add_argument("--device", default="cpu")
    dm.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="metrics of a detector on labelled media (and after re-encoding)")
    ev.add_argument("detector")
    ev.add_argument("--real", action="append", type=Path, help="folder of real media (repeatable)")
    ev.add_argument("--fake", action="append", type=Path, help="folder of fake media (repeatable)")
    ev.add_argument("--csv", type=Path, help="CSV with path,label[,source] instead of folders")
    ev.add_argument("--weights")
    ev.add_argument("--variants", help="comma list of original,crf23,crf32,half,aac64 (default: all that apply)")
    ev.add_argument("--out", default="evaluation", help="folder for metrics JSON, scores and plots")
    ev.add_argument("--device", default="cpu")
    ev.set_defaults(func=cmd_evaluate)

    ft = sub.add_parser("finetune", help="fine-tune a detector on labelled samples; writes new weights")
    ft.add_argument("detector")
    ft.add_argument("--real", action="append", type=Path, required=True, help="folder or file of real media (repeat)")
    ft.add_argument("--fake", action="append", type=Path, required=True, help="folder or file of fakes (repeat)")
    ft.add_argument("--weights", help="start from these weights (default: the detector's)")
    ft.add_argument("--tag", default="finetuned", help="new weights are <detector>.<tag>")
    ft.add_argument("--epochs", type=int, help="default: the detector's recipe (forensics detectors)")
    ft.add_argument("--lr", type=float, help="default: the detector's recipe")
    ft.add_argument("--patience", type=int, help="epochs without a better validation AUC before stopping")
    ft.add_argument("--batch-size", type=int, default=32)
    ft.add_argument("--device", default="cpu")
    ft.set_defaults(func=cmd_finetune)

    fp = sub.add_parser("fingerprint", help="generator fingerprints for attribution (gan_fingerprint)")
    fps = fp.add_subparsers(dest="action", required=True)
    fa = fps.add_parser("add", help="build a fingerprint from a folder of one generator's images")
    fa.add_argument("name")
    fa.add_argument("folder", type=Path)
    fa.add_argument("--weights", help="gan_fingerprint weights to embed with (default: the shipped ones)")
    fps.add_parser("list")
    fp.set_defaults(func=cmd_fingerprint)

    pp = sub.add_parser("person", help="person-of-interest profiles for the identity detector")
    pps = pp.add_subparsers(dest="action", required=True)
    pa = pps.add_parser("add", help="build a profile from genuine media of one person (files or folders)")
    pa.add_argument("name")
    pa.add_argument("paths", nargs="+", type=Path)
    pa.add_argument("--replace", action="store_true", help="replace an existing profile of that name")
    pa.add_argument("--weights", help="identity weights whose preprocessing to embed with (default: shipped)")
    pa.add_argument("--device", default="cpu")
    pps.add_parser("list")
    for action in ("show", "remove"):
        pps.add_parser(action).add_argument("name")
    pp.set_defaults(func=cmd_person)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from forensics.errors import ForensicsError

    try:
        return int(args.func(args))
    except ForensicsError as exc:
        _console().print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _console().print("interrupted; re-run the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
