"""Reproduce the shipped ``face_swap`` weights from ../shared/data (real faces only).

Stages (each cached/resumable under --work, never in the repo):
  prep   MTCNN face crops: training crops with landmarks from real photos and training real videos;
         validation units (the detector's own ``face_units``) from held-out real videos and all fake videos.
  train  self-blended images (forensics.train.sbi) from the training crops; checkpoint every epoch.
  final  calibrate on validation units, measure frame/video AUC per source, write models/face_swap.<tag>.*

    python scripts/train_face_swap.py --stage all --steps 900 --eval-every 150 --tag sbi_v1  # sbi_v1
    # sbi_v2: sbi_v1 (from git history) fine-tuned on lower-face re-renders only
    git show 881db3f:models/face_swap.sbi_v1.safetensors > /tmp/sbi_v1.safetensors
    python scripts/train_face_swap.py --stage train --init /tmp/sbi_v1.safetensors --steps 400 --lr 1e-3 \
        --mouth 1.0 --eval-every 100
    python scripts/eval_face_swap.py --weights face_swap.sbi_v2 --reencode crf23 crf32 half --seconds 5 \
        --json /tmp/face_swap/robustness.json   # after a first --stage final, which the second one completes
    python scripts/train_face_swap.py --stage final --tag sbi_v2
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PREPROCESSING = {
    "size": 128,
    "margin": 0.2,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "sample_fps": 2.0,
    "face_detector": "forensics.media.faces.MTCNNDetector defaults (max_side=640, min_face=40, threshold=0.92)",
    "crop": "forensics.detectors.face_swap.face_crop (align_face, eyes levelled)",
}
TRAIN_FRAMES_PER_VIDEO = 20
# Real videos held out for validation: originals paired with the shared fakes, plus whole identities/sources.
VAL_REAL_KEYS = (
    "ffpp__original_sequences",  # FF++ originals 004/519/634 (targets of the FF++ fakes)
    "icpr2020dfdc__notebook__samples__lynaeydofd",  # DFDC real
    "cyshih704__",  # real pair of the cyshih704 fake
    "semchan__HyperLips__test",  # HyperLips inputs
    "dreamtalk__data__style_clip__video__W011",  # one MEAD identity
    "Pose_Source",  # PC-AVS VoxCeleb2 pose clips
    "driving__d18",
    "driving__d19",
    "driving__d20",
    "deep_avsr__audio__demo__00016",
    "deep_avsr__audio__demo__00019",
    "deep_avsr__audio__demo__00022",
    "deep_avsr__audio__demo__00024",
)


def manifest() -> list[dict[str, str]]:
    with open(DATA / "MANIFEST.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def source_of(row: dict[str, str]) -> str:
    """Validation source name: the fake method, or 'real'."""
    if row["label"] == "real":
        return "real"
    m = row["method"]
    if m.startswith("HyperLips"):
        return "HyperLips (lip-sync)"
    if row["repo"].startswith("cyshih704"):
        return "FF++ (cyshih704)"
    return m


def split_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows: real photos + training real videos, validation rows: held-out real videos + all fake videos)."""
    train, val = [], []
    for row in manifest():
        folder = row["file"].split("/", 1)[0]
        if folder == "real_face_photo":
            train.append(row)
        elif folder == "real_video":
            (val if any(k in row["file"] for k in VAL_REAL_KEYS) else train).append(row)
        elif folder == "fake_video":
            val.append(row)
    return train, val


def _prep_file(row: dict[str, str], role: str, out: Path) -> None:
    from forensics.detectors.face_swap import face_crop, face_units
    from forensics.media import open_media

    crops, lms = [], []
    media = open_media(DATA / row["file"])
    if role == "train":
        frames = media.frames(n=TRAIN_FRAMES_PER_VIDEO) if media.info.kind == "video" else media.frames()
        tracks = media.faces(n=TRAIN_FRAMES_PER_VIDEO) if media.info.kind == "video" else media.faces()
        images = {f.index: f.image for f in frames}
        for tr in tracks:
            for face in tr.faces:
                if face.landmarks is None:
                    continue
                c, lm = face_crop(images[face.frame], face, PREPROCESSING)
                crops.append(c)
                lms.append(lm)
        np.savez(out, crops=np.asarray(crops, np.uint8).reshape(-1, 128, 128, 3), lms=np.asarray(lms, np.float32))
        return
    try:
        units = face_units(media, PREPROCESSING)
    except Exception as exc:  # SkipDetection: no face
        print(f"  no units for {row['file']}: {exc}")
        units = []
    if row["label"] == "real":  # SBI validation crops from held-out reals
        images = {f.index: f.image for f in media.frames(fps=PREPROCESSING["sample_fps"])}
        for tr in media.faces(fps=PREPROCESSING["sample_fps"]):
            for face in tr.faces:
                if face.landmarks is not None:
                    c, lm = face_crop(images[face.frame], face, PREPROCESSING)
                    crops.append(c)
                    lms.append(lm)
    np.savez(
        out,
        x=np.asarray([u.x for u in units], np.float16).reshape(-1, 3, 128, 128),
        track=np.asarray([u.track for u in units], np.int32),
        frame=np.asarray([u.frame for u in units], np.int32),
        t=np.asarray([u.start for u in units], np.float32),
        crops=np.asarray(crops, np.uint8).reshape(-1, 128, 128, 3),
        lms=np.asarray(lms, np.float32).reshape(-1, 5, 2),
    )


def prep(work: Path) -> None:
    """Cache crops per file (resumable: finished files are skipped)."""
    import torch

    torch.set_num_threads(1)
    (work / "files").mkdir(parents=True, exist_ok=True)
    train, val = split_rows()
    jobs = [(r, "train") for r in train] + [(r, "val") for r in val]
    t0 = time.time()
    for i, (row, role) in enumerate(jobs):
        out = _file_path(work, row, role)
        if out.exists():
            continue
        try:
            _prep_file(row, role, out)
        except Exception as exc:  # a broken file must not stop the preparation
            print(f"  skipped {row['file']}: {type(exc).__name__}: {exc}")
            np.savez(out, crops=np.zeros((0, 128, 128, 3), np.uint8), lms=np.zeros((0, 5, 2), np.float32))
        if i % 20 == 0:
            print(f"prep {i + 1}/{len(jobs)} {time.time() - t0:.0f}s", flush=True)
    print(f"prep done in {time.time() - t0:.0f}s", flush=True)


# -- training -----------------------------------------------------------------------------


def _file_path(work: Path, row: dict[str, str], role: str) -> Path:
    return work / "files" / (hashlib.sha1(f"{role}:{row['file']}".encode()).hexdigest()[:16] + ".npz")


def load_train(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """All cached training crops (N x S x S x 3 uint8) and their landmarks (N x 5 x 2)."""
    train, _ = split_rows()
    crops, lms = [], []
    for row in train:
        d = np.load(_file_path(work, row, "train"))
        if len(d["crops"]):
            crops.append(d["crops"])
            lms.append(d["lms"])
    return np.concatenate(crops), np.concatenate(lms)


def load_val(work: Path) -> list[dict]:
    """Per validation file: its row, source, unit inputs/tracks, and (reals) crops with landmarks."""
    _, val = split_rows()
    out = []
    for row in val:
        d = np.load(_file_path(work, row, "val"))
        if "x" not in d.files:
            continue
        out.append({"row": row, "source": source_of(row), **{k: d[k] for k in d.files}})
    return out


def sbi_batch(
    crops: np.ndarray,
    lms: np.ndarray,
    idx: np.ndarray,
    rng: np.random.Generator,
    *,
    augment: bool = True,
    mouth: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs and labels for real crops ``idx`` and one self-blended fake of each (a ``mouth`` share of
    them lower-face re-renders)."""
    from forensics.detectors.face_swap import normalize
    from forensics.train.sbi import make_pair

    reals, fakes = [], []
    for i in idx:
        r, f, _ = make_pair(crops[i], lms[i], rng, augment=augment, mouth=mouth)
        reals.append(r)
        fakes.append(f)
    x = normalize(np.stack(reals + fakes), PREPROCESSING)
    return x, np.concatenate([np.zeros(len(idx)), np.ones(len(idx))]).astype(np.float32)


class SBIBatches(IterableDataset):
    """Iterable of training batches; batch ``step`` is seeded by its index, so a resumed run is reproducible."""

    def __init__(self, crops: np.ndarray, lms: np.ndarray, start: int, stop: int, pairs: int, mouth: float) -> None:
        self.crops, self.lms, self.start, self.stop, self.pairs, self.mouth = crops, lms, start, stop, pairs, mouth

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        torch.set_num_threads(1)
        for step in range(self.start, self.stop):
            rng = np.random.default_rng(step)
            idx = rng.choice(len(self.crops), size=self.pairs, replace=False)
            x, y = sbi_batch(self.crops, self.lms, idx, rng, mouth=self.mouth)
            yield torch.from_numpy(x), torch.from_numpy(y)


def logits_of(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(np.asarray(x[i : i + batch], np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def sbi_val_set(val: list[dict], n: int = 300, seed: int = 1234, mouth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed synthetic validation pairs from held-out real videos (identities never trained on), fakes mixed
    as in training (``mouth``)."""
    crops = np.concatenate([v["crops"] for v in val if v["row"]["label"] == "real" and len(v["crops"])])
    lms = np.concatenate([v["lms"] for v in val if v["row"]["label"] == "real" and len(v["lms"])])
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(crops), size=min(n, len(crops)), replace=False)
    return sbi_batch(crops, lms, idx, rng, augment=False, mouth=mouth)


def video_scores(val: list[dict], logits: list[np.ndarray], calibration: dict) -> np.ndarray:
    """File scores with the detector's own calibration and aggregation."""
    from forensics.detectors.base import aggregate, calibrate

    return np.array(
        [
            aggregate(calibration.get("aggregation", "track_max"), calibrate(lg, calibration), list(v["track"]))
            if len(lg)
            else np.nan
            for v, lg in zip(val, logits, strict=True)
        ]
    )


def shared_fake_metrics(val: list[dict], logits: list[np.ndarray], calibration: dict) -> dict:
    """Frame- and video-level metrics per fake source against all held-out real videos."""
    from forensics.train.metrics import summarize

    files = video_scores(val, logits, calibration)
    real = [i for i, v in enumerate(val) if v["source"] == "real" and len(logits[i])]
    groups = {s: [i for i, v in enumerate(val) if v["source"] == s and len(logits[i])] for s in _sources(val)}
    face_swap = [i for s, ids in groups.items() if not s.startswith("HyperLips") for i in ids]
    groups = {"ALL face-swap/re-enactment (FF++, DFDC, cyshih704)": face_swap, **groups}
    out = {}
    for name, ids in groups.items():
        fr_real = np.concatenate([logits[i] for i in real])
        fr_fake = np.concatenate([logits[i] for i in ids])
        frame = summarize(np.r_[np.zeros(len(fr_real)), np.ones(len(fr_fake))], np.r_[fr_real, fr_fake])
        video = summarize(np.r_[np.zeros(len(real)), np.ones(len(ids))], np.r_[files[real], files[ids]])
        thr = calibration.get("threshold")
        if thr is not None:
            video["flagged_at_threshold"] = int((files[ids] >= thr).sum())
        out[name] = {"frame": frame, "video": video}
    return out


def original_of(fake_file: str) -> str | None:
    """The real video a shared fake was made from, when it is in ../shared/data (FF++ target, cyshih704, HyperLips)."""
    name = fake_file.rsplit("__", 1)[-1]
    if "ffpp__manipulated_sequences" in fake_file:
        ffpp = "real_video/polimi-ispl__icpr2020dfdc__test__data__ffpp__original_sequences__youtube__c23__videos__"
        return f"{ffpp}{name.split('_')[0]}.mp4"
    if fake_file.startswith("fake_video/cyshih704"):
        return "real_video/cyshih704__Deepfake-Detection__test_video_example__real.mp4"
    if fake_file.startswith("fake_video/semchan__HyperLips__result__result_video") and name[-5] in "12":
        return f"real_video/semchan__HyperLips__test__video{name[-5]}__video{name[-5]}.mp4"
    return None


def paired_metrics(val: list[dict], logits: list[np.ndarray], calibration: dict) -> dict:
    """Each fake against the video it was made from: same person, scene and encoder; only the manipulation differs."""
    from sklearn.metrics import roc_auc_score

    files = video_scores(val, logits, calibration)
    index = {v["row"]["file"]: i for i, v in enumerate(val)}
    out = {}
    for i, v in enumerate(val):
        j = index.get(original_of(v["row"]["file"]) or "")
        if v["row"]["label"] != "fake" or j is None or not len(logits[i]) or not len(logits[j]):
            continue
        y = np.r_[np.zeros(len(logits[j])), np.ones(len(logits[i]))]
        out[v["row"]["file"].rsplit("__", 1)[-1]] = {
            "source": v["source"],
            "fake_file_score": float(files[i]),
            "original_file_score": float(files[j]),
            "frame_auc_vs_original": float(roc_auc_score(y, np.r_[logits[j], logits[i]])),
        }
    return out


def _sources(val: list[dict]) -> list[str]:
    return sorted({v["source"] for v in val if v["source"] != "real"})


def warm_start(init: Path) -> tuple[dict[str, Any], list[dict]]:
    """Float tensors and training stages of a warm start: a ``best.pt`` of an earlier run (its ``ckpt.pt`` beside
    it) or shipped face_swap weights (a .safetensors path, e.g. an old version from git history)."""
    import torch

    from forensics.weights import load_weights

    if init.suffix == ".safetensors":
        w = load_weights(init)
        r = w.card["recipe"]
        stage = {"steps": r["steps"], "selected_step": w.card["metrics"]["checkpoint_step"], "lr": r["max_lr"],
                 "wall_s": r["wall_time_s"], "mouth": r.get("lower_face_rerender_share", 0.0),
                 "weights": f"{w.name}@{w.sha256[:12]}"}  # fmt: skip
        state = {k: v.float() for k, v in w.tensors.items()}
        return state, [*r.get("earlier_stages_warm_started_from", []), stage]
    best = torch.load(init, weights_only=False)
    prev = torch.load(init.parent / "ckpt.pt", weights_only=False)
    stage = {"steps": prev["step"], "selected_step": best["step"], "lr": prev.get("lr"), "wall_s": round(prev["wall"]),
             "mouth": prev.get("mouth", 0.0)}  # fmt: skip
    return best["model"], [*prev.get("stages", []), stage]


def train(
    work: Path,
    *,
    steps: int,
    pairs: int,
    lr: float,
    eval_every: int,
    widths: list[int],
    init: Path | None = None,
    mouth: float = 0.0,
) -> None:
    """SBI training with AdamW + cosine schedule; checkpoint (resumable) and best-by-SBI-val-AUC in ``work``."""
    import torch
    from sklearn.metrics import roc_auc_score

    from forensics.nn.face_swap import FaceSwapNet

    torch.set_num_threads(1)
    crops, lms = load_train(work)
    val = load_val(work)
    xv, yv = sbi_val_set(val, mouth=mouth)
    print(f"train crops {len(crops)}, SBI val pairs {len(xv) // 2}, val files {len(val)}", flush=True)
    torch.manual_seed(0)
    model = FaceSwapNet(widths=widths)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    ckpt = work / "ckpt.pt"
    start, best, wall = 0, -1.0, 0.0
    stages: list[dict] = []  # earlier warm-start stages, recorded in the card's recipe
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, best, wall, stages = st["step"], st["best"], st["wall"], st.get("stages", [])
        print(f"resumed at step {start} (best SBI val AUC {best:.4f})", flush=True)
    elif init is not None:
        state, stages = warm_start(init)
        model.load_state_dict(state)
        print(f"warm start from {init}", flush=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    t0 = time.time() - wall
    run = 0.0
    batches = torch.utils.data.DataLoader(
        SBIBatches(crops, lms, start, steps, pairs, mouth), batch_size=None, num_workers=1, prefetch_factor=4
    )  # one worker synthesises while the main thread trains
    for step, (x, y) in zip(range(start, steps), batches, strict=True):
        model.train()
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step > start else loss.item()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            auc = float(roc_auc_score(yv, logits_of(model, xv)))
            fk = [logits_of(model, v["x"]) for v in val]
            m = shared_fake_metrics(val, fk, {"aggregation": "track_max"})
            allm = m["ALL face-swap/re-enactment (FF++, DFDC, cyshih704)"]
            print(
                f"step {step + 1}/{steps} loss {run:.4f} lr {sched.get_last_lr()[0]:.2e} SBI-val AUC {auc:.4f}"
                f" | shared fakes frame AUC {allm['frame']['auc']:.3f} video AUC {allm['video']['auc']:.3f}"
                f" | {time.time() - t0:.0f}s",
                flush=True,
            )
            if auc > best:
                best = auc
                torch.save({"model": model.state_dict(), "step": step + 1, "auc": auc}, work / "best.pt")
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "step": step + 1,
                    "best": best,
                    "wall": time.time() - t0,
                    "lr": lr,
                    "mouth": mouth,
                    "stages": stages,
                },
                ckpt,
            )
        elif step % 20 == 0:
            print(f"step {step}/{steps} loss {run:.4f} {time.time() - t0:.0f}s", flush=True)


# -- calibration, metrics, weights ------------------------------------------------------------

TAG = "sbi_v2"
LICENCE = (
    "code Apache-2.0; weights research-only (trained on research-only faces: LFW, VoxCeleb2, LRS2, MEAD,"
    " scraped celebrity photos without licence)"
)


def final(work: Path, *, widths: list[int], tag: str, command: str) -> Path:
    """Calibrate the best checkpoint, measure it on the shared fakes, and write models/face_swap.<tag>.*"""
    import torch

    from forensics.nn.face_swap import FaceSwapNet
    from forensics.train.calibration import calibration_record, fit_temperature
    from forensics.train.metrics import summarize
    from forensics.weights import save_weights

    torch.set_num_threads(1)
    best = torch.load(work / "best.pt", weights_only=False)
    ckpt = torch.load(work / "ckpt.pt", weights_only=False)
    model = FaceSwapNet(widths=widths)
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in best["model"].items()}
    model.load_state_dict({k: v.float() for k, v in tensors.items()})  # measure exactly what ships (float16)
    val = load_val(work)
    mouth = float(ckpt.get("mouth", 0.0))
    xv, yv = sbi_val_set(val, mouth=mouth)
    sbi_logits = logits_of(model, xv)
    logits = [logits_of(model, v["x"]) for v in val]
    real_ids = [i for i, v in enumerate(val) if v["source"] == "real" and len(logits[i])]
    # temperature/bias: held-out real faces vs self-blended fakes of those faces (shared fakes stay unseen)
    cal_logits = np.r_[np.concatenate([logits[i] for i in real_ids]), sbi_logits[yv == 1]]
    cal_labels = np.r_[np.zeros(sum(len(logits[i]) for i in real_ids)), np.ones(int((yv == 1).sum()))]
    t, b = fit_temperature(cal_logits, cal_labels)
    real_files = video_scores([val[i] for i in real_ids], [logits[i] for i in real_ids], {"temperature": t, "bias": b})
    calibration = calibration_record(
        cal_logits,
        cal_labels,
        real_files,
        fpr=0.01,
        aggregation="track_max",
        note=(
            f"temperature/bias: logistic fit on {len(cal_labels)} validation faces (real faces of {len(real_ids)}"
            " held-out real videos + self-blended fakes of them); threshold: 1% FPR on those real videos' file"
            " scores (track_max of calibrated face scores); with so few real videos it is their maximum"
        ),
    )
    metrics = shared_fake_metrics(val, logits, calibration)
    paired = paired_metrics(val, logits, calibration)
    sbi_val = summarize(yv, sbi_logits) | {"lower_face_rerender_share": mouth}
    if mouth:  # also on whole-face blends only, comparable with recipes without lower-face re-renders
        xf, yf = sbi_val_set(val)
        sbi_val["whole_face_only_auc"] = summarize(yf, logits_of(model, xf))["auc"]
    real_file_scores = video_scores(val, logits, calibration)[real_ids]
    card = {
        "name": f"face_swap.{tag}",
        "detector": "face_swap",
        "architecture": {"name": "FaceSwapNet", "args": {"widths": list(widths), "dropout": 0.2}},
        "preprocessing": PREPROCESSING,
        "calibration": calibration,
        "training_data": {
            "train": (
                "real faces only (no fake ever trained on): all of ../shared/data/real_face_photo (LFW subset via"
                " krasserm/face-recognition, face-api.js Big Bang Theory crops, deepface/face_recognition/DECA/"
                "Deep3DFaceRecon/CodeFormer/human/ghost/insightface examples) and"
                f" {sum(1 for r in split_rows()[0] if r['kind'] == 'video')} training real videos of"
                " ../shared/data/real_video (PC-AVS VoxCeleb2 clips, LRS2 (deep_avsr), GRID (LipNet), MEAD"
                " (dreamtalk M030/W009), LivePortrait driving clips, Wav2Lip-GFPGAN input),"
                f" {TRAIN_FRAMES_PER_VIDEO} frames each; self-blended fakes synthesised on the fly"
                " (forensics.train.sbi)"
            ),
            "validation": (
                f"{len(real_ids)} held-out real videos (FF++ originals 004/519/634, DFDC real, cyshih704 real,"
                " HyperLips inputs, MEAD W011, PC-AVS Pose_Source, LivePortrait d18-d20, four LRS2 clips) vs all"
                " 12 fake videos of ../shared/data/fake_video (FF++ c23 Deepfakes/Face2Face/FaceSwap/"
                "NeuralTextures, 2 DFDC, the cyshih704 FF++ fake, 5 HyperLips lip-sync), never trained on"
            ),
            "licences": (
                "research-only: FaceForensics++, DFDC, VoxCeleb2, LRS2, LFW, MEAD, GRID; scraped celebrity photos"
                " carry no licence; see ../shared/data/README.md"
            ),
        },
        "metrics": {
            "command": command,
            "data": "../shared/data validation split above; frame = every sampled face at 2 fps, video = file score",
            "shared_fakes_vs_heldout_reals": metrics,
            "fake_vs_own_original": paired,
            "sbi_validation_pairs": sbi_val,
            "real_validation_file_scores": {
                "max": float(np.max(real_file_scores)),
                "median": float(np.median(real_file_scores)),
            },
            "checkpoint_step": int(best["step"]),
            "selection": "checkpoint with the best SBI-validation AUC (held-out identities); shared fakes not used",
        },
        "licence": LICENCE,
        "recipe": {
            "optimiser": "AdamW weight_decay 5e-4, OneCycle (cosine) max lr as given",
            "steps": int(ckpt["step"]),
            "batch": "16 real crops + their 16 self-blended fakes, shared random resize/blur/JPEG",
            "wall_time_s": round(float(ckpt["wall"])),
            "max_lr": ckpt.get("lr", 2e-3),
            "lower_face_rerender_share": mouth,
            "earlier_stages_warm_started_from": ckpt.get("stages", []),
            "hardware": "1 CPU thread (torch.set_num_threads(1)) on a shared 2-core machine",
            "stored": "float16 tensors (metrics measured after the cast)",
        },
    }
    torch.manual_seed(0)  # reference: the same pipeline with an untrained network (what chance and shortcuts give)
    untrained = FaceSwapNet(widths=widths)
    base = shared_fake_metrics(val, [logits_of(untrained, v["x"]) for v in val], calibration)
    card["metrics"]["untrained_network_reference"] = {
        k: {"frame_auc": m["frame"]["auc"], "video_auc": m["video"]["auc"]} for k, m in base.items()
    }
    rob = work / "robustness.json"  # written by scripts/eval_face_swap.py --json (same tensors, end to end)
    if rob.exists():
        r = json.loads(rob.read_text())
        card["metrics"]["end_to_end_reencoded"] = {
            "command": r.pop("command"),
            **{
                variant: {
                    g: {"frame_auc": m["frame"]["auc"], "video_auc": m["video"]["auc"], "video": m["video"]}
                    for g, m in res.items()
                    if isinstance(m, dict) and "video" in m
                }
                for variant, res in r.items()
            },
        }
    models = Path(__file__).resolve().parents[1] / "models"
    old = models / f"face_swap.{tag}.json"  # re-running final keeps the version's hand-written history
    if old.exists() and (notes := json.loads(old.read_text()).get("notes")):
        card["notes"] = notes
    path = save_weights(tensors, card, models)
    path.with_suffix(".md").write_text(human_card(card, path))
    print(json.dumps({"calibration": calibration, "metrics": card["metrics"]}, indent=1))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


def _robustness_lines(rob: dict | None) -> list[str]:
    if not rob:
        return []
    variants = [v for v in rob if v != "command"]
    groups = list(rob[variants[0]])
    head = "| source | " + " | ".join(f"{v} frame / video AUC" for v in variants) + " |"
    lines = ["", f"End to end through the detector, after re-encoding (`{rob['command']}`):", "", head]
    lines.append("|---" * (len(variants) + 1) + "|")
    for g in groups:
        cells = [
            f"{rob[v][g]['frame_auc']:.3f} / {rob[v][g]['video_auc']:.3f}" if g in rob[v] else "-" for v in variants
        ]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def human_card(card: dict, path: Path) -> str:
    """A short Markdown model card with the same facts as the JSON card."""
    from forensics.weights import sha256_file

    m = card["metrics"]
    sv = m["sbi_validation_pairs"]
    cal = card["calibration"]
    rows = [
        f"| {name} | {v['frame']['auc']:.3f} | {v['video']['auc']:.3f} | {v['video']['n_fake']} |"
        f" {v['video'].get('flagged_at_threshold', '-')} | {m['untrained_network_reference'][name]['video_auc']:.3f} |"
        for name, v in m["shared_fakes_vs_heldout_reals"].items()
    ]
    n_real = next(iter(m["shared_fakes_vs_heldout_reals"].values()))["video"]["n_real"]
    return "\n".join(
        [
            f"# {card['name']}",
            "",
            "Face-swap / face re-rendering detector: a small CNN (FaceSwapNet, "
            f"{card['architecture']['args']}) trained from scratch on CPU on self-blended images made from real"
            " faces only. It scores every face MTCNN finds (aligned crops, "
            f"{card['preprocessing']['size']} px, margin {card['preprocessing']['margin']},"
            f" {card['preprocessing']['sample_fps']} frames/s); the file score is the most suspicious face track's"
            " mean calibrated score.",
            "",
            f"- file: `{path.name}`, {path.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(path)}`",
            f"- licence: {card['licence']}",
            f"- calibration: temperature {cal['temperature']:.3f}, bias {cal['bias']:.3f}, threshold"
            f" {cal['threshold']:.4f} at FPR {cal['fpr']} ({cal['aggregation']}). {cal['note']}",
            f"- recipe: {json.dumps(card['recipe'])}",
            "",
            "## Training data",
            "",
            f"- train: {card['training_data']['train']}",
            f"- validation: {card['training_data']['validation']}",
            f"- licences: {card['training_data']['licences']}",
            "",
            "## Measured (shared fakes vs held-out real videos; never trained on)",
            "",
            f"Command: `{m['command']}`. Each fake source is compared with all {n_real} held-out real videos."
            " Few fake videos per source: every number below is noisy (one video moves a source's AUC by"
            " 1/n_real). 'untrained' is the same pipeline with a random-init network: what chance, the"
            " multi-face track_max bias and format shortcuts give.",
            "",
            "| source | frame AUC | video AUC | fake videos | flagged at threshold | untrained video AUC |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"SBI validation pairs (held-out identities, synthetic): AUC {sv['auc']:.3f}"
            + (
                f" ({sv['lower_face_rerender_share']:.0%} lower-face re-renders; whole-face blends only:"
                f" {sv['whole_face_only_auc']:.3f})."
                if sv.get("lower_face_rerender_share")
                else "."
            ),
            "",
            "Each fake against the real video it was made from (same person, scene, encoder):",
            "",
            "| fake | source | fake file score | original file score | frame AUC vs original |",
            "|---|---|---|---|---|",
            *(
                f"| {k} | {p['source']} | {p['fake_file_score']:.3f} | {p['original_file_score']:.3f} |"
                f" {p['frame_auc_vs_original']:.3f} |"
                for k, p in m["fake_vs_own_original"].items()
            ),
            *_robustness_lines(m.get("end_to_end_reencoded")),
            "",
            f"Checkpoint step {m['checkpoint_step']}; {m['selection']}.",
            "",
            "## Limits",
            "",
            "- Trained on ~1,400 real face crops with only 5 landmarks (ellipse/hull masks, not 68/81-point hulls),"
            " at 128 px, on one CPU thread for tens of minutes: far from the SBI paper's EfficientNet-B4 at 380 px.",
            "- Lip-sync fakes (HyperLips) re-render only the mouth: lower-face re-render self-blends (recipe share"
            " above) help there only a little (see the table); lip_sync checks the mouth against the speech.",
            "- The 1% FPR threshold rests on few real validation videos, so it is effectively their maximum score.",
            "",
            *([card["notes"], ""] if card.get("notes") else []),  # hand-written history kept in the card
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["prep", "train", "final", "all"], default="all")
    ap.add_argument("--tag", default=TAG)
    ap.add_argument("--work", type=Path, default=Path("/tmp/face_swap"))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=16, help="real crops per batch (each with its fake)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--widths", type=int, nargs="+", default=[24, 32, 64, 128, 256])
    ap.add_argument(
        "--init", type=Path, help="warm start (new schedule): a best.pt of an earlier run, or face_swap .safetensors"
    )
    ap.add_argument("--mouth", type=float, default=0.0, help="share of fakes that re-render the lower face only")
    args = ap.parse_args()
    if args.stage in ("prep", "all"):
        prep(args.work)
    if args.stage in ("train", "all"):
        train(
            args.work,
            steps=args.steps,
            pairs=args.pairs,
            lr=args.lr,
            eval_every=args.eval_every,
            widths=args.widths,
            init=args.init,
            mouth=args.mouth,
        )
    if args.stage in ("final", "all"):
        final(
            args.work,
            widths=args.widths,
            tag=args.tag,
            command="python scripts/train_face_swap.py " + " ".join(sys.argv[1:]),
        )


if __name__ == "__main__":
    main()
