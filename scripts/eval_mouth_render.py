"""Held-out test of ``mouth_render`` (and ``lip_sync`` on the same files): lip-sync and talking-head fakes
(HyperLips, Wav2Lip, DINet, LatentSync, SyncTalk, GeneFace, AniPortrait, V-Express) against real talking heads
of sources neither trained nor validated on (LivePortrait, FSGAN, HyperLips inputs, HDTF, Wav2Lip inputs...).

File AUC, TPR at 1 % FPR, real and fake files flagged at each card's threshold, every file's score.

    python scripts/eval_mouth_render.py                                  # shipped weights + lip_sync.sync_v10
    python scripts/eval_mouth_render.py --recipes A_base B_texture       # recipes from --work, on cached crops
    python scripts/eval_mouth_render.py --weights --bench --threads 2    # cost on the 720p talking heads only

``--bench``: seconds per second of video of ``forensics.analyze`` with lip_sync alone and with lip_sync and
mouth_render together (one decode serves both) on the shared 720p talking heads (HyperLips inputs).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch

import forensics
from forensics.train import mouth_render as mr

ROOT = Path(__file__).resolve().parents[1]
log = functools.partial(print, flush=True)


def _row(name: str, t: dict) -> str:
    flag = f"{t['real_flagged']:.0%} / {t['fake_flagged']:.0%}" if "real_flagged" in t else "-"
    return (
        f"| {name} | {t['n_real']} / {t['n_fake']} ({t['skipped']} skipped) | {t['auc']:.3f} | "
        f"{t['tpr@0.01fpr']:.2f} | {flag} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mouth_render"))
    ap.add_argument("--weights", nargs="*", default=["mouth_render.render_v1", "lip_sync.sync_v10"])
    ap.add_argument("--recipes", nargs="*", default=[], help="trained states in --work (TAG.pt + TAG.json)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bench", action="store_true", help="measure the cost on the 720p talking heads")
    ap.add_argument(
        "--nested", action="store_true", help="choose among the recipes / weights with each generator family held out"
    )
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.bench:
        bench(args.data, args.repeat)
    rows = mr.test_rows(args.data)
    header = [
        "| weights / recipe | real / fake files | file AUC | TPR@1%FPR | flagged real / fake |",
        "|---|---|---|---|---|",
    ]
    lines, per_file = [], {}
    if args.recipes:
        from forensics.nn.mouth_render import MouthRenderNet

        split = mr.load_split(args.data, args.work / "cache")
        files = split["test_real"] + split["test_fake"]
        for tag in args.recipes:
            meta = json.loads((args.work / f"{tag}.json").read_text())
            model = MouthRenderNet(**meta["arch"])
            model.load_state_dict(torch.load(args.work / f"{tag}.pt", weights_only=True))
            scores = mr.cached_file_scores(model, files)
            t = mr.held_out_table(rows, scores, None)
            lines.append(_row(f"{tag} (val AUC {meta['recipe']['val_auc']:.3f})", t))
            per_file[tag] = scores
    for name in args.weights:
        det = forensics.create_detector(name.split(".")[0], weights=name)
        scores, cost = {}, []
        for r in rows:
            t0 = time.perf_counter()
            res = det.detect(args.data / r.file)
            cost.append((time.perf_counter() - t0, res))
            scores[r.file] = res.score if res.status == "ok" else None
            if res.status != "ok":
                log(f"  {name} {r.file}: {res.status} ({res.reason})")
        lines.append(_row(name, mr.held_out_table(rows, scores, det.threshold)))
        per_file[name] = scores
    log("\n".join(header + lines))
    if args.nested:
        nested = mr.nested_family_choice(rows, per_file)
        log("\nchoice with each generator family held out (mean AUC over the other families' fakes vs all reals):")
        for fam, fold in nested["folds"].items():
            auc = "-" if fold["auc"] is None else f"{fold['auc']:.3f}"
            log(f"  {fam:11s} chosen {fold['chosen']}: AUC {auc}")
        log(
            f"  nested mean family AUC {nested['nested_mean_auc']:.3f}; each recipe's own: "
            + ", ".join(f"{k} {v:.3f}" for k, v in nested["mean_family_auc"].items())
        )
    log("\nper file (method: score per weights / recipe)")
    for r in rows:
        vals = "  ".join(
            f"{per_file[k][r.file]:.3f}" if per_file[k].get(r.file) is not None else "  -  " for k in per_file
        )
        log(f"  {mr.method_name(r):11s} {vals}  {Path(r.file).name[:70]}")


def bench(data: Path, repeat: int) -> None:
    """Realtime factor of lip_sync alone and with mouth_render (best of ``repeat``) on the 720p talking heads."""
    from forensics.media import open_media

    videos = sorted((data / "real_video").glob("semchan__HyperLips__test__*.mp4"))
    seconds = sum(open_media(v).info.duration or 0.0 for v in videos)
    for names in (["lip_sync"], ["lip_sync", "mouth_render"], ["mouth_render"]):
        dets = [forensics.create_detector(n) for n in names]
        for d in dets:
            d.warm_up()
        walls = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for v in videos:
                forensics.analyze(v, detectors=dets)
            walls.append(time.perf_counter() - t0)
        best = min(walls)
        log(f"{'+'.join(names)}: {seconds:.1f} s of 720p video in {best:.2f} s, {seconds / best:.1f}x realtime")


if __name__ == "__main__":
    main()
