"""face_swap training and evaluation on the labelled collection: real face crops, self-blended fakes made from
them (:mod:`forensics.train.sbi`), the validation split by source, calibration, metrics and the weights card.

``scripts/train_face_swap.py`` and ``scripts/eval_face_swap.py`` drive it. Progress goes through ``log``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from forensics.train.manifest import Row, held_out, read_manifest

Log = Callable[[str], None]
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
ALL_FACE_SWAP = "ALL face-swap/re-enactment (FF++, DFDC, cyshih704)"
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


def source_of(row: Row) -> str:
    """Validation source name: the fake method, or 'real'."""
    if row.label == "real":
        return "real"
    if row.method.startswith("HyperLips"):
        return "HyperLips (lip-sync)"
    if row.repo.startswith("cyshih704"):
        return "FF++ (cyshih704)"
    return row.method


def split_rows(data: Path) -> tuple[list[Row], list[Row]]:
    """(train rows: real photos + training real videos, validation rows: held-out real videos + all fake videos)."""
    train, val = [], []
    for row in read_manifest(data):
        if row.folder == "real_face_photo":
            train.append(row)
        elif row.folder == "real_video":
            (val if held_out(row, VAL_REAL_KEYS) else train).append(row)
        elif row.folder == "fake_video":
            val.append(row)
    return train, val


def _prep_file(path: Path, row: Row, role: str, out: Path, log: Log) -> None:
    from forensics.detectors.face_swap import face_crop, face_units
    from forensics.media import open_media

    crops, lms = [], []
    media = open_media(path)
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
        log(f"  no units for {row.file}: {exc}")
        units = []
    if row.label == "real":  # SBI validation crops from held-out reals
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


def prep(data: Path, work: Path, log: Log) -> None:
    """Cache crops per file (resumable: finished files are skipped)."""
    torch.set_num_threads(1)
    (work / "files").mkdir(parents=True, exist_ok=True)
    train, val = split_rows(data)
    jobs = [(r, "train") for r in train] + [(r, "val") for r in val]
    t0 = time.time()
    for i, (row, role) in enumerate(jobs):
        out = _file_path(work, row, role)
        if out.exists():
            continue
        try:
            _prep_file(data / row.file, row, role, out, log)
        except Exception as exc:  # a broken file must not stop the preparation
            log(f"  skipped {row.file}: {type(exc).__name__}: {exc}")
            np.savez(out, crops=np.zeros((0, 128, 128, 3), np.uint8), lms=np.zeros((0, 5, 2), np.float32))
        if i % 20 == 0:
            log(f"prep {i + 1}/{len(jobs)} {time.time() - t0:.0f}s")
    log(f"prep done in {time.time() - t0:.0f}s")


# -- training -----------------------------------------------------------------------------


def _file_path(work: Path, row: Row, role: str) -> Path:
    return work / "files" / (hashlib.sha1(f"{role}:{row.file}".encode()).hexdigest()[:16] + ".npz")


def load_train(data: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """All cached training crops (N x S x S x 3 uint8) and their landmarks (N x 5 x 2)."""
    train, _ = split_rows(data)
    crops, lms = [], []
    for row in train:
        d = np.load(_file_path(work, row, "train"))
        if len(d["crops"]):
            crops.append(d["crops"])
            lms.append(d["lms"])
    return np.concatenate(crops), np.concatenate(lms)


def load_val(data: Path, work: Path) -> list[dict]:
    """Per validation file: its row, source, unit inputs/tracks, and (reals) crops with landmarks."""
    _, val = split_rows(data)
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
    """The network's face logits of inputs ``x`` (in batches, eval mode, no gradients)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(np.asarray(x[i : i + batch], np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def sbi_val_set(val: list[dict], n: int = 300, seed: int = 1234, mouth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed synthetic validation pairs from held-out real videos (identities never trained on), fakes mixed
    as in training (``mouth``)."""
    crops = np.concatenate([v["crops"] for v in val if v["row"].label == "real" and len(v["crops"])])
    lms = np.concatenate([v["lms"] for v in val if v["row"].label == "real" and len(v["lms"])])
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
    groups = {ALL_FACE_SWAP: face_swap, **groups}
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
    index = {v["row"].file: i for i, v in enumerate(val)}
    out = {}
    for i, v in enumerate(val):
        j = index.get(original_of(v["row"].file) or "")
        if v["row"].label != "fake" or j is None or not len(logits[i]) or not len(logits[j]):
            continue
        y = np.r_[np.zeros(len(logits[j])), np.ones(len(logits[i]))]
        out[v["row"].file.rsplit("__", 1)[-1]] = {
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
    from forensics.weights import load_weights

    if init.suffix == ".safetensors":
        w = load_weights(init)
        r = w.card["recipe"]
        stage = {"steps": r["steps"], "selected_step": w.card["metrics"]["checkpoint_step"], "lr": r["max_lr"],
                 "wall_s": r["wall_time_s"], "mouth": r.get("lower_face_rerender_share", 0.0),
                 "weights": f"{w.name}@{w.sha256[:12]}"}  # fmt: skip
        state = {k: v.float() for k, v in w.tensors.items()}
        return state, [*r.get("earlier_stages_warm_started_from", []), stage]
    best = torch.load(init, weights_only=True)
    prev = torch.load(init.parent / "ckpt.pt", weights_only=True)
    run = prev["extra"]
    stage = {"steps": prev["step"], "selected_step": best["step"], "lr": run.get("lr"), "wall_s": round(prev["wall_s"]),
             "mouth": run.get("mouth", 0.0)}  # fmt: skip
    return best["model"], [*run.get("stages", []), stage]


def _ema(losses: list[float]) -> float:
    """The running loss printed while training: an exponential average (0.98) over this session's steps."""
    run = losses[0]
    for x in losses[1:]:
        run = 0.98 * run + 0.02 * x
    return run


def train(
    data: Path,
    work: Path,
    *,
    steps: int,
    pairs: int,
    lr: float,
    eval_every: int,
    widths: list[int],
    init: Path | None = None,
    mouth: float = 0.0,
    log: Log,
) -> None:
    """SBI training with AdamW + cosine schedule; checkpoint (resumable) and best-by-SBI-val-AUC in ``work``."""
    from sklearn.metrics import roc_auc_score

    from forensics.nn.face_swap import FaceSwapNet
    from forensics.train.loop import Step, fit

    torch.set_num_threads(1)
    crops, lms = load_train(data, work)
    val = load_val(data, work)
    xv, yv = sbi_val_set(val, mouth=mouth)
    log(f"train crops {len(crops)}, SBI val pairs {len(xv) // 2}, val files {len(val)}")
    torch.manual_seed(0)
    model = FaceSwapNet(widths=widths)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    ckpt = work / "ckpt.pt"
    stages: list[dict] = []  # earlier warm-start stages, recorded in the card's recipe
    if not ckpt.exists() and init is not None:
        state, stages = warm_start(init)
        model.load_state_dict(state)
        log(f"warm start from {init}")
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def batch_loss(step: int) -> torch.Tensor:
        nonlocal batches
        if batches is None:  # one worker synthesises while the main thread trains
            dataset = SBIBatches(crops, lms, step, steps, pairs, mouth)
            batches = iter(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1, prefetch_factor=4))
        x, y = next(batches)
        return loss_fn(model(x), y)

    def validate(p: Step) -> tuple[float, dict]:
        auc = float(roc_auc_score(yv, logits_of(model, xv)))
        m = shared_fake_metrics(val, [logits_of(model, v["x"]) for v in val], {"aggregation": "track_max"})
        allm = m[ALL_FACE_SWAP]
        log(
            f"step {p.step}/{steps} loss {_ema(p.losses):.4f} lr {sched.get_last_lr()[0]:.2e} SBI-val AUC {auc:.4f}"
            f" | shared fakes frame AUC {allm['frame']['auc']:.3f} video AUC {allm['video']['auc']:.3f}"
            f" | {p.wall_s:.0f}s"
        )
        return auc, {"step": p.step, "sbi_val_auc": auc}

    def log_loss(p: Step) -> None:
        if p.record is None:
            log(f"step {p.step}/{steps} loss {_ema(p.losses):.4f} {p.wall_s:.0f}s")

    def resume(step: int, extra: dict) -> None:
        stages[:] = extra["stages"]
        log(f"resumed at step {step}")

    fit(model, opt, batch_loss, steps=steps, scheduler=sched, validate=validate, validate_every=eval_every,
        checkpoint=ckpt, checkpoint_every=eval_every, best=work / "best.pt", restore_best=False, log=log_loss,
        log_every=20, extra=lambda: {"lr": lr, "mouth": mouth, "stages": stages}, resume=resume)  # fmt: skip


TAG = "sbi_v2"
LICENCE = (
    "code Apache-2.0; weights research-only (trained on research-only faces: LFW, VoxCeleb2, LRS2, MEAD,"
    " scraped celebrity photos without licence)"
)


def final(data: Path, work: Path, models: Path, *, widths: list[int], tag: str, command: str, log: Log) -> Path:
    """Calibrate the best checkpoint, measure it on the shared fakes, and write ``models``/face_swap.<tag>.*"""
    from forensics.nn.face_swap import FaceSwapNet
    from forensics.train.calibration import calibration_record, fit_temperature
    from forensics.train.cards import build_card, keep_notes, write_card
    from forensics.train.metrics import summarize

    torch.set_num_threads(1)
    best = torch.load(work / "best.pt", weights_only=True)
    ckpt = torch.load(work / "ckpt.pt", weights_only=True)
    run = ckpt["extra"]
    model = FaceSwapNet(widths=widths)
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in best["model"].items()}
    model.load_state_dict({k: v.float() for k, v in tensors.items()})  # measure exactly what ships (float16)
    val = load_val(data, work)
    mouth = float(run.get("mouth", 0.0))
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
    card = build_card(
        "face_swap",
        tag,
        architecture="FaceSwapNet",
        args={"widths": list(widths), "dropout": 0.2},
        preprocessing=PREPROCESSING,
        calibration=calibration,
        training_data={
            "train": (
                "real faces only (no fake ever trained on): all of ../shared/data/real_face_photo (LFW subset via"
                " krasserm/face-recognition, face-api.js Big Bang Theory crops, deepface/face_recognition/DECA/"
                "Deep3DFaceRecon/CodeFormer/human/ghost/insightface examples) and"
                f" {sum(1 for r in split_rows(data)[0] if r.kind == 'video')} training real videos of"
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
        metrics={
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
        licence=LICENCE,
        recipe={
            "optimiser": "AdamW weight_decay 5e-4, OneCycle (cosine) max lr as given",
            "steps": int(ckpt["step"]),
            "batch": "16 real crops + their 16 self-blended fakes, shared random resize/blur/JPEG",
            "wall_time_s": round(float(ckpt["wall_s"])),
            "max_lr": run.get("lr", 2e-3),
            "lower_face_rerender_share": mouth,
            "earlier_stages_warm_started_from": run.get("stages", []),
            "hardware": "1 CPU thread (torch.set_num_threads(1)) on a shared 2-core machine",
            "stored": "float16 tensors (metrics measured after the cast)",
        },
    )
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
    path = write_card(tensors, keep_notes(card, models), models)  # a re-run keeps the version's written history
    log(json.dumps({"calibration": calibration, "metrics": card["metrics"]}, indent=1))
    log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


# -- end-to-end evaluation through the detector (scripts/eval_face_swap.py) ---------------------------
VARIANTS = {"orig": None, "crf23": (23, 1.0), "crf32": (32, 1.0), "half": (23, 0.5)}


def reencode_video(src: Path, dst: Path, *, crf: int, scale: float, seconds: float | None) -> Path:
    """H.264 (libx264, yuv420p) at ``crf``, optionally downscaled by ``scale``, video only."""
    import av
    import cv2

    with av.open(str(src)) as inp:
        vs = inp.streams.video[0]
        rate = vs.average_rate or 25
        with av.open(str(dst), "w") as out:
            ov = None
            for frame in inp.decode(vs):
                if seconds is not None and frame.time is not None and frame.time > seconds:
                    break
                img = frame.to_ndarray(format="rgb24")
                h, w = img.shape[:2]
                nw, nh = max(2, round(w * scale) // 2 * 2), max(2, round(h * scale) // 2 * 2)
                if (nw, nh) != (w, h):
                    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
                if ov is None:
                    ov = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"})
                    ov.width, ov.height, ov.pix_fmt = nw, nh, "yuv420p"
                for pkt in ov.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(pkt)
            if ov is not None:
                for pkt in ov.encode():
                    out.mux(pkt)
    return dst


def is_video(path: Path) -> bool:
    """Whether ``path`` is a (non-animated) video; unreadable files are not."""
    from forensics.errors import MediaError
    from forensics.media import open_media

    try:
        info = open_media(path).info
    except MediaError:
        return False
    return info.kind == "video" and not info.animated


def trim(src: Path, dst: Path, *, seconds: float) -> Path:
    """The first ``seconds`` of the video stream, packets copied (no re-encoding)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        ov = out.add_stream_from_template(vs)
        for pkt in inp.demux(vs):
            if pkt.dts is None:
                continue
            if pkt.pts is not None and float(pkt.pts * vs.time_base) > seconds:
                break
            pkt.stream = ov
            out.mux(pkt)
    return dst


def eval_rows(data: Path) -> list[tuple[Path, int, str]]:
    """``(path, label, source)`` of the validation split (held-out real videos, every fake video)."""
    return [(data / r.file, int(r.label == "fake"), source_of(r)) for r in split_rows(data)[1]]


def csv_rows(path: Path) -> list[tuple[Path, int, str]]:
    """``(path, label, source)`` of a ``path,label[,source]`` CSV (label ``1``/``fake`` or else real)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if rows and rows[0][:2] == ["path", "label"]:
        rows = rows[1:]
    out = []
    for r in rows:
        label = int(r[1] in ("1", "fake"))
        out.append((Path(r[0]), label, r[2] if len(r) > 2 else ("fake" if label else "real")))
    return out


def variant_metrics(results: list[dict]) -> dict:
    """Frame and video metrics of one variant's ``results``, overall and per fake source (each against all reals)."""
    from forensics.train.metrics import summarize

    ok = [r for r in results if r["status"] == "ok"]
    reals = [r for r in ok if r["label"] == 0]
    groups = {"ALL": [r for r in ok if r["label"] == 1]}
    swap = [r for r in groups["ALL"] if not r["source"].startswith("HyperLips")]
    if len(swap) != len(groups["ALL"]):
        groups["face-swap/re-enactment (without lip-sync)"] = swap
    for r in groups["ALL"]:
        groups.setdefault(r["source"], []).append(r)
    out = {"skipped_or_error": len(results) - len(ok)}
    for g, fakes in groups.items():
        rs = reals + fakes
        frame_y = np.concatenate([np.full(len(r["probs"]), r["label"]) for r in rs])
        frame_s = np.concatenate([r["probs"] for r in rs])
        out[g] = {
            "frame": summarize(frame_y, frame_s),
            "video": summarize(np.array([r["label"] for r in rs]), np.array([r["score"] for r in rs])),
        }
    return out


def score_variant(
    det: Any, rows: list[tuple[Path, int, str]], variant: str, seconds: float | None, tmp: Path, log: Log
) -> list[dict]:
    """Every row scored by ``det`` after the re-encoding ``variant`` (videos; images as they are), optionally
    only its first ``seconds``: a result record per file with its face scores (``probs``)."""
    from forensics.detectors.base import aggregate

    results = []
    for i, (path, label, source) in enumerate(rows):
        p = path
        if not is_video(path):  # images are scored as they are in every variant
            pass
        elif VARIANTS[variant] is None and seconds is not None:
            p = trim(path, tmp / f"{i}_orig{path.suffix}", seconds=seconds)
        elif VARIANTS[variant] is not None:
            crf, scale = VARIANTS[variant]
            p = reencode_video(path, tmp / f"{i}_{variant}.mp4", crf=crf, scale=scale, seconds=seconds)
        res = det.detect(p)
        probs = np.array([s.score for s in res.segments]) if res.status == "ok" else np.zeros(0)
        if res.status == "ok":
            assert np.isclose(aggregate(det.aggregation_name, probs, [s.track for s in res.segments]), res.score)
        results.append(
            {"path": str(path), "label": label, "source": source, "status": res.status, "score": res.score,
             "probs": probs, "reason": res.reason}
        )  # fmt: skip
        if res.status != "ok":
            log(f"  {res.status}: {path.name}: {res.reason}")
    return results
