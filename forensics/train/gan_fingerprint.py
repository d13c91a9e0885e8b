"""gan_fingerprint training on the labelled collection: pools of native-resolution real and GAN crops, batches
with synthetic upsampling traces (:mod:`forensics.train.upsampling`), calibration on the held-out families
(:mod:`forensics.train.gan_fingerprint_data`) and the weights card.

``scripts/train_gan_fingerprint.py`` drives it. Progress goes through ``log``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from forensics.detectors.gan_fingerprint import GanFingerprint, to_input
from forensics.nn.gan_fingerprint import ResidualFingerprintNet
from forensics.train import gan_fingerprint_data as gd
from forensics.train.calibration import calibration_record, fit_temperature
from forensics.train.cards import build_card, write_card
from forensics.train.metrics import summarize
from forensics.train.upsampling import normalise, plain_resample, upsampling_trace

Log = Callable[[str], None]
TAG = "residual_v1"
ARCH = {"widths": [16, 32, 64, 96], "embed": 64, "residual_gain": 4.0}
PRE = {
    "crop": 128,
    "max_crops": 9,
    "align": 8,
    "min_side": 64,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "sample_fps": 0.5,
    "train_crop": 96,
}
REAL_WEIGHTS = {"photo": 3.0, "video_frame": 1.0}
GAN_FRACTION = 0.4  # of fake samples; the rest are synthetic upsampling traces
MAX_SIDE = 640  # pools keep native pixels: big photos give centre crops of at most this size


# -- pools: lists of RGB uint8 arrays stored flat in one .npz ------------------------------------
def save_pool(path: Path, imgs: list[np.ndarray], groups: list[str]) -> None:
    shapes = np.array([im.shape for im in imgs], np.int64)
    np.savez(path, data=np.concatenate([im.reshape(-1) for im in imgs]), shapes=shapes, groups=np.array(groups))


def load_pool(path: Path) -> dict[str, list[np.ndarray]]:
    """Images grouped by family (fakes) or source kind (reals): batches sample groups uniformly."""
    z = np.load(path)
    data, shapes, groups = z["data"], z["shapes"], z["groups"]
    out: dict[str, list[np.ndarray]] = {}
    o = 0
    for s, g in zip(shapes, groups, strict=True):
        n = int(np.prod(s))
        out.setdefault(str(g), []).append(data[o : o + n].reshape(s))
        o += n
    return out


def native_crops(img: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to two native-resolution crops of at most MAX_SIDE (whole image when small)."""
    h, w = img.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return [img]
    out = []
    for _ in range(2):
        y = int(rng.integers(0, max(h - MAX_SIDE, 0) + 1))
        x = int(rng.integers(0, max(w - MAX_SIDE, 0) + 1))
        out.append(np.ascontiguousarray(img[y : y + MAX_SIDE, x : x + MAX_SIDE]))
    return out


def prep(data: Path, work: Path, log: Log) -> None:
    """Decode and cache the training pools (``train_real.npz``, ``train_fake.npz``) and the validation set."""
    from forensics.media import open_media

    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = gd.read_manifest(data)
    parts = gd.split(rows)
    real, real_g, fake, fake_g = [], [], [], []
    for r in parts["train_real"]:
        crops = native_crops(gd.load_rgb(data / r.file), rng)
        real += crops
        real_g += ["photo"] * len(crops)
    for r in parts["train_fake"]:
        for t in gd.tiles(gd.load_rgb(data / r.file), r):
            crops = native_crops(t, rng)
            fake += crops
            fake_g += [gd.family(r)] * len(crops)
    for r in gd.video_split(rows)["train"]:
        try:
            for fr in open_media(data / r.file).frames(n=3):
                crops = native_crops(fr.image, rng)
                real += crops
                real_g += ["video_frame"] * len(crops)
        except Exception as exc:  # a broken video only loses its frames
            log(f"skip {r.file}: {exc}")
    save_pool(work / "train_real.npz", real, real_g)
    save_pool(work / "train_fake.npz", fake, fake_g)
    count = lambda g: {k: g.count(k) for k in sorted(set(g))}  # noqa: E731
    log(f"pools: real {count(real_g)}, fake {count(fake_g)}")
    # in-training validation: held-out sources, JPEG q90 at 512 px
    items = gd.build_eval_set(data, work / "eval" / "q90_512", "q90_512")
    log(f"validation set: {sum(1 - y for _, y, _ in items)} real, {sum(y for _, y, _ in items)} fake")


# -- training --------------------------------------------------------------------------------
def pick(pool: dict[str, list[np.ndarray]], rng: np.random.Generator, weights: dict[str, float]) -> np.ndarray:
    """A random image of a group drawn with ``weights`` (uniform over the pool's groups by default)."""
    names = sorted(pool)
    p = np.array([weights.get(g, 1.0) for g in names])
    group = pool[names[rng.choice(len(names), p=p / p.sum())]]
    return group[rng.integers(len(group))]


def make_batch(
    real: dict, fake: dict, rng: np.random.Generator, n: int, plain_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A balanced batch; ``plain_p`` of the reals are shrunk and plainly re-enlarged (:func:`plain_resample`)."""
    crop = PRE["train_crop"]
    xs, ys = [], []
    for i in range(n):
        label = i % 2
        if label == 0:
            img = pick(real, rng, REAL_WEIGHTS)
            if rng.random() < plain_p:  # upsampled but trace-free content stays real
                img = plain_resample(np.ascontiguousarray(normalise_region(img, rng, crop)), rng)
        elif rng.random() < GAN_FRACTION:
            img = pick(fake, rng, {})
        else:  # synthetic upsampling trace on a real crop
            src = pick(real, rng, REAL_WEIGHTS)
            img = upsampling_trace(np.ascontiguousarray(normalise_region(src, rng, crop)), rng)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        xs.append(to_input(normalise(img, rng, crop=crop), PRE["mean"], PRE["std"]))
        ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.float32)


def normalise_region(img: np.ndarray, rng: np.random.Generator, crop: int) -> np.ndarray:
    """The raw region a synthetic trace is drawn on (same 1.5x-crop size the pipeline uses)."""
    from forensics.train.upsampling import random_crop

    return random_crop(img, int(crop * 1.5) + 8, rng)


def val_logits(model: torch.nn.Module, items: list, det: GanFingerprint) -> np.ndarray:
    """File scores (mean unit logit) of the validation set with the detector's own units."""
    from forensics.media import open_media

    model.eval()
    scores = []
    with torch.inference_mode():
        for path, _, _ in items:
            xs = np.stack([u.x for u in det.units(open_media(path))])
            scores.append(float(model(torch.from_numpy(xs)).mean()))
    model.train()
    return np.array(scores)


class _PreOnly(GanFingerprint):
    """The detector's unit extraction with the training preprocessing (no weights needed)."""

    @property
    def preprocessing(self) -> dict:
        return PRE


def train(data: Path, work: Path, *, steps: int, batch: int, lr: float, plain_p: float, log: Log) -> None:
    """Train from the cached pools (resumes from ``work/ckpt.pt``); every 400 steps the held-out AUC and a
    ``model_step<N>.pt`` snapshot."""
    from forensics.train.loop import Step, fit

    torch.manual_seed(0)
    real, fake = load_pool(work / "train_real.npz"), load_pool(work / "train_fake.npz")
    items = gd.build_eval_set(data, work / "eval" / "q90_512", "q90_512")
    labels = np.array([y for _, y, _ in items])
    det = _PreOnly()
    model = ResidualFingerprintNet(
        widths=tuple(ARCH["widths"]), embed=ARCH["embed"], residual_gain=ARCH["residual_gain"]
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(1)

    def batch_loss(step: int) -> torch.Tensor:
        x, y = make_batch(real, fake, rng, batch, plain_p)
        return F.binary_cross_entropy_with_logits(model(x)[:, 0], y)

    def validate(p: Step) -> tuple[None, dict]:
        m = summarize(labels, val_logits(model, items, det))
        log(f"  val q90_512 (held-out families): auc {m['auc']:.4f} ap {m['ap']:.4f} tpr@1%fpr {m['tpr@0.01fpr']:.3f}")
        torch.save(model.state_dict(), work / f"model_step{p.step}.pt")
        return None, {"step": p.step, "q90_512": m}

    def log_loss(p: Step) -> None:
        log(
            f"step {p.step}/{steps} loss {np.mean(p.losses[-50:]):.4f} lr {sched.get_last_lr()[0]:.2e}"
            f" wall {p.wall_s:.0f}s"
        )

    def resume(step: int, extra: dict) -> None:
        rng.bit_generator.state = extra["rng"]
        log(f"resumed at step {step}")

    fit(model, opt, batch_loss, steps=steps, scheduler=sched, validate=validate, validate_every=400,
        checkpoint=work / "ckpt.pt", checkpoint_every=50, log=log_loss, log_every=50, resume=resume,
        extra=lambda: {"rng": rng.bit_generator.state, "steps": steps, "batch": batch, "lr": lr})  # fmt: skip


def calibrate(data: Path, work: Path, ckpt: Path, models: Path, *, plain_p: float, log: Log) -> Path:
    """fp16 weights -> calibration on the held-out set -> metrics per protocol -> ``models``."""
    from forensics.detectors.base import aggregate
    from forensics.detectors.base import calibrate as apply_cal

    st = torch.load(ckpt, weights_only=True)
    run = st["extra"]
    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in st["model"].items()}
    agg = GanFingerprint.spec.aggregation
    card = build_card(
        "gan_fingerprint",
        TAG,
        architecture="ResidualFingerprintNet",
        args=ARCH,
        preprocessing=PRE,
        calibration={"temperature": 1.0, "bias": 0.0, "threshold": 0.5, "fpr": None, "aggregation": agg},
        training_data=TRAINING_DATA,
        metrics={},
        licence=LICENCE,
        recipe={
            "steps": st["step"], "batch": run["batch"], "optimiser": f"AdamW lr {run['lr']} wd 1e-4, one-cycle",
            "loss": f"BCE, balanced real / fake; fakes {GAN_FRACTION:.0%} StyleGAN images, {1 - GAN_FRACTION:.0%} "
            f"synthetic upsampling traces; {plain_p:.0%} of reals shrunk and plainly re-enlarged (plain_resample)",
            "augmentation": "identical for both classes: random crop, p=0.05 greyscale, p=0.3 resize x0.75-1.33, "
            "p=0.9 JPEG q65-100, hflip; training crops 96 px, inference crops 128 px",
            "wall_time_s": round(st["wall_s"]), "hardware": "CPU, torch.set_num_threads(1), 2 cores shared",
            "command": "python scripts/train_gan_fingerprint.py",
        },
    )  # fmt: skip
    det = GanFingerprint(str(write_card(tensors, card, work / "tmpmodels", markdown=False)))
    items = gd.build_eval_set(data, work / "eval" / "q90_512", "q90_512")
    logits = [det.decision_function(path)[1] for path, _, _ in items]
    labels = np.array([y for _, y, _ in items])
    ul = np.concatenate(logits)
    uy = np.concatenate([np.full(len(lg), y) for lg, y in zip(logits, labels, strict=True)])
    t, b = fit_temperature(ul, uy)
    files = np.array([aggregate(agg, apply_cal(lg, {"temperature": t, "bias": b}), [None] * len(lg)) for lg in logits])
    card["calibration"] = calibration_record(
        ul, uy, files[labels == 0], fpr=0.01, aggregation=agg,
        note="fit on held-out real sources vs held-out generator families (Stable Diffusion, GRIP) and the held-out "
        "half of generated-faces, re-encoded JPEG q90 at 512 px (centre crop); threshold at 1% FPR on those real "
        "files. The metrics below use the same held-out files: there is no separate test split (too little data).",
    )  # fmt: skip
    det = GanFingerprint(str(write_card(tensors, card, work / "tmpmodels", markdown=False)))
    for prot in gd.PROTOCOLS:
        res = gd.evaluate(det, data, work, prot)
        card["metrics"][prot] = {k: {m: round(v, 4) for m, v in d.items()} for k, d in res.items()}
        a = res["all"]
        log(
            f"{prot}: auc {a['auc']:.4f} ap {a['ap']:.4f} tpr@1%fpr {a['tpr@0.01fpr']:.3f}"
            f" fpr@thr {a['fpr@threshold']:.3f}"
        )
    card["metrics"]["data"] = (
        "held-out: " + TRAINING_DATA["validation"]["real"] + " vs " + TRAINING_DATA["validation"]["fake"]
    )
    card["metrics"]["command"] = "python scripts/eval_gan_fingerprint.py --protocol " + " ".join(gd.PROTOCOLS)
    path = write_card(tensors, card, models)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


TRAINING_DATA = {
    "train": {
        "real": "../shared/data real_face_photo + real_image from sources not in the validation list (LFW subset "
        "krasserm/face-recognition, face-api.js, deepface, DECA, vladmandic/human, Deep3DFaceRecon, CodeFormer LQ "
        "inputs, ImageNet samples, AFHQ-free sources) and 3 frames each of real_video except LivePortrait/DFDC/FF++ "
        "originals (VoxCeleb2, LRS2, GRID, MEAD, dreamtalk, PC-AVS, HyperLips inputs)",
        "fake": "seeprettyface StyleGAN/StyleGAN2 single images (a312863063/*, not the sample sheets), the 'male' "
        "half of hmdghoul/generated-faces (40% of fake samples, families weighted equally), and synthetic "
        "upsampling traces made on the fly from the training real crops (60%, forensics/train/upsampling.py). "
        "Sample grids (StyleGAN2 model zoo, seeprettyface sheets) are not used: downscaled tiles carry no trace",
    },
    "validation": {
        "real": "held-out real sources: " + ", ".join(gd.VAL_REAL_REPOS),
        "fake": "held-out generator families: Stable Diffusion (apple/ml-stable-diffusion, CompVis/stable-diffusion), "
        "GRIP examples (BigGAN, CycleGAN, pix2pix, ProGAN, StyleGAN, realgan); seen family: the 'female' half of "
        "hmdghoul/generated-faces (other images of a generator that trained)",
    },
    "licences": "research-only or unlicensed sources among them (LFW, VoxCeleb2, LRS2, GRID, MEAD, FF++/DFDC "
    "originals, scraped celebrity photos, generated-faces without licence file); see ../shared/data/README.md",
}
LICENCE = "code Apache-2.0; weights research-only (trained on research-only and unlicensed data)"
