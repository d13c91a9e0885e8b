"""Reproduce ``models/synthetic_speech.lcnn_v1``, ``gmm_v1`` and (``--neural``) ``lcnn_v2``.

Real speech comes from ``../shared/data`` (real_speech, plus the audio tracks of real_video); the
fakes are copy-synthesis of those same utterances (forensics.train.vocoders), and both classes pass
through the same random channels (AAC/Opus/MP3 round trips, noise). With ``--neural`` the script
first trains the small neural vocoders of NEURAL_VOCODERS on training-split speech
(forensics.train.neural_vocoder; kept in ``--work``, never in the repository) and adds their
copy-synthesis fakes, half of every fake half-batch. Splits are by source:

* train: sources not listed below;
* validation (model selection and calibration): speechbrain, pyannote, LibriSpeech test-other
  (Resemblyzer), GRID (LipNet) and LRS2 (deep_avsr) -- never trained on;
* test (``scripts/eval_synthetic_speech.py`` only): every file of ``fake_speech`` and the real
  ground truth published with them (hifi-gan-demo, vits-demo, CycleGAN-VC2, StarGAN-VC).

Windows and features come from ``forensics.detectors.synthetic_speech``, the scanner's own code.
Everything slow is cached in ``--work`` (default /tmp/synthetic_speech), and training resumes
from its checkpoint there. Usage::

    python scripts/train_synthetic_speech.py            # prep (~10 min), LCNN (~25 min), GMM, calibrate, save
    python scripts/train_synthetic_speech.py --work /tmp/speech2 --neural --tag lcnn_v2 --skip-gmm  # + vocoders
    python scripts/eval_synthetic_speech.py --write-card  # shared-fake metrics into both cards
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from forensics.detectors.base import aggregate, calibrate
from forensics.detectors.synthetic_speech import lfcc, log_spectrogram, speech_windows
from forensics.media import open_media
from forensics.nn.synthetic_speech import LCNN, GMMScorer
from forensics.train.calibration import calibration_record, fit_temperature
from forensics.train.metrics import summarize
from forensics.train.neural_vocoder import VocoderConfig, f0_track, load_generator, synthesize, train_vocoder
from forensics.train.vocoders import available_vocoders, copy_synthesis, random_channel
from forensics.weights import save_weights

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_REPOS = {"jik876/hifi-gan-demo", "jaywalnut310/vits-demo", "jackaduma/CycleGAN-VC2", "hujinsen/pytorch-StarGAN-VC"}
VAL_REPOS = {"speechbrain/speechbrain", "pypi:pyannote-audio==4.0.7", "rizkiarm/LipNet", "smeetrs/deep_avsr"}
AGGREGATION = "top_k_mean"
VOCODERS_V1 = ("griffin_lim_mel", "griffin_lim_stft", "world", "lpc", "phase_vocoder", "mel_envelope")
MAX_SECONDS = 60.0  # per source file, so one long interview does not dominate
# Neural vocoders trained here (forensics.train.neural_vocoder) for the lcnn_v2 fakes: different upsampling
# factors (hop 256 / 160 / 200), transposed vs nearest+conv upsampling, kernels and seeds, half of them with
# an NSF-style F0 excitation (harmonics, as in NSF-HiFi-GAN), trained 3000 steps on the spectral losses; two
# of them continue with a multi-scale discriminator (as Parallel WaveGAN: spectral pretraining, then
# adversarial) and are kept at two snapshots. "snapshots": the training steps whose generators make fakes.
NEURAL_VOCODERS: dict[str, dict] = {
    "tconv_884": {"upsample": (8, 8, 4), "upsample_mode": "transposed", "seed": 1, "snapshots": (3000,)},
    "tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 2, "fmax": 7600.0,
                  "snapshots": (3000,)},
    "nearest_5442": {"upsample": (5, 4, 4, 2), "upsample_mode": "nearest", "seed": 3, "snapshots": (3000,)},
    "nsf_tconv_8822": {"upsample": (8, 8, 2, 2), "upsample_mode": "transposed", "seed": 4, "res_kernel": 5,
                       "dilations": (1, 2, 4), "source": True, "snapshots": (3000,)},
    "nsf_nearest_5542": {"upsample": (5, 5, 4, 2), "upsample_mode": "nearest", "seed": 5, "channels": 128,
                         "source": True, "snapshots": (3000,)},
    "nsf_tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 6, "source": True,
                      "snapshots": (3000,)},
    "gan_tconv_884": {"upsample": (8, 8, 4), "upsample_mode": "transposed", "seed": 1, "adversarial_from": 3000,
                      "snapshots": (4000, 5000)},
    "gan_nsf_tconv_854": {"upsample": (8, 5, 4), "upsample_mode": "transposed", "seed": 6, "source": True,
                          "adversarial_from": 3000, "snapshots": (4000, 5000)},
}  # fmt: skip
LICENCE_NOTE = (
    "research-only: LibriSpeech (CC BY 4.0), VCTK (CC BY 4.0), CMU ARCTIC (free), Free Spoken Digit (CC BY-SA 4.0), "
    "VoxCeleb2 / LRS2 / GRID / DFDC audio tracks (research-only licences), speechbrain/pyannote test samples "
    "(Apache-2.0/MIT)"
)

PRE: dict = {
    "sample_rate": 16000,
    "window_s": 4.0,
    "hop_s": 2.0,
    "min_speech_s": 0.5,
    "short_audio": "tiled to one window (no silent padding)",
    "last_window": "aligned to the end of the audio",
    "loudness_dbfs": -23.0,
    "max_gain_db": 30.0,
    "n_fft": 512,
    "win_length": 400,
    "hop_length": 160,
    "log_eps": 1e-8,
    "vad": {"abs_floor_dbfs": -55.0, "rel_db": 35.0, "min_active": 0.2, "min_modulation_db": 3.0, "max_flatness": 0.3},
}
RAW = {"features": "logspec", "feat_mean": 0.0, "feat_std": 1.0}
LFCC = {"features": "lfcc", "n_filters": 20, "n_lfcc": 20}


def split_of(row: dict) -> str | None:
    if row["label"] == "fake":
        return None
    if row["repo"] in TEST_REPOS:
        return "test"
    if row["repo"] in VAL_REPOS or "test-other" in row["file"]:
        return "val"
    return "train"


def sources() -> list[dict]:
    with open(DATA / "MANIFEST.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = []
    for r in rows:
        if not r["file"].startswith(("real_speech/", "real_video/")):
            continue
        split = split_of(r)
        if split in ("train", "val"):
            out.append(r | {"split": split})
    return out


def prep_file(row: dict, idx: int, work: Path, vocoders: list[str]) -> Path | None:
    """Cache windows of one real file and of its copy-synthesis fakes: log-spec (float16) + LFCC + labels."""
    dest = work / "cache" / f"{idx:04d}.npz"
    if dest.exists():
        return dest
    rng = np.random.default_rng(idx)
    media = open_media(DATA / row["file"])
    if not media.info.has_audio:
        return None
    wav = media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])]
    train = row["split"] == "train"
    versions: list[tuple[np.ndarray, int, str]] = []  # (waveform, label, description)
    for _ in range(2 if train else 1):
        versions.append((*_channel(wav, rng, 0), "real"))
    n_fakes = 3 if train else 1
    for k in range(n_fakes):
        method = vocoders[(idx * n_fakes + k) % len(vocoders)]
        fake = copy_synthesis(wav, PRE["sample_rate"], method, rng)
        versions.append((*_channel(fake, rng, 1), method))
    specs, ceps, labels, kinds = [], [], [], []
    for v, label, kind in versions:
        hop = 1.0 if (train and label == 0) else 2.0
        for _, _, chunk in speech_windows(v, PRE | {"hop_s": hop}):
            specs.append(log_spectrogram(chunk, PRE | RAW).astype(np.float16))
            ceps.append(lfcc(chunk, PRE | LFCC))
            labels.append(label)
            kinds.append(kind)
    if not specs:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, spec=np.stack(specs), lfcc=np.stack(ceps), label=np.array(labels), kind=np.array(kinds))
    return dest


def train_audio(rows: list[dict], work: Path) -> tuple[np.ndarray, np.ndarray]:
    """All training-split real speech at 16 kHz, concatenated, and its per-sample F0 (cached)."""
    dest, dest_f0 = work / "neural" / "train_audio.npy", work / "neural" / "train_f0.npy"
    if not dest.exists():
        parts = []
        for row in rows:
            media = open_media(DATA / row["file"])
            if row["split"] == "train" and media.info.has_audio:
                parts.append(media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])])
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.save(dest, np.concatenate(parts).astype(np.float32))
    if not dest_f0.exists():
        np.save(dest_f0, f0_track(np.load(dest), PRE["sample_rate"]))
    return np.load(dest), np.load(dest_f0)


def train_neural_vocoders(rows: list[dict], work: Path, max_minutes: float) -> list[Path]:
    """Train every vocoder of NEURAL_VOCODERS (resumable); returns the snapshot files in a fixed order."""
    audio = f0 = None
    snapshots = []
    for name, kw in NEURAL_VOCODERS.items():
        cfg = VocoderConfig(**{k: v for k, v in kw.items() if k != "snapshots"})
        for steps in kw["snapshots"]:
            dest = work / "neural" / f"{name}@{steps}.pt"
            snapshots.append(dest)
            if dest.exists():
                continue
            audio, f0 = train_audio(rows, work) if audio is None else (audio, f0)
            ckpt = work / "neural" / f"{name}.pt"
            state = torch.load(ckpt, weights_only=False) if ckpt.exists() else None
            t0 = time.time()
            while state is None or state["step"] < steps:
                state = train_vocoder(audio, cfg, steps=steps, state=state, f0=f0, max_seconds=60.0)
                torch.save(state, ckpt)
                print(f"vocoder {name} step {state['step']} loss {np.mean(state['losses'][-50:]):.3f}"
                      f" ({time.time() - t0:.0f}s)", flush=True)  # fmt: skip
                if time.time() - t0 > max_minutes * 60:
                    raise SystemExit(f"vocoder {name}: time budget reached; rerun to resume")
            torch.save({k: state[k] for k in ("config", "model", "step", "losses")}, dest)
    return snapshots


def prep_neural(row: dict, idx: int, work: Path, snapshots: list[Path], cache: dict) -> Path | None:
    """Cache windows of neural-vocoder copy-synthesis fakes of one real file (3 snapshots in train, 1 in val)."""
    dest = work / f"cache_neural_{len(snapshots)}" / f"{idx:04d}.npz"
    if dest.exists():
        return dest
    rng = np.random.default_rng(10_000 + idx)
    media = open_media(DATA / row["file"])
    if not media.info.has_audio:
        return None
    wav = media.audio(PRE["sample_rate"])[: int(MAX_SECONDS * PRE["sample_rate"])]
    specs, ceps, labels, kinds = [], [], [], []
    for k in rng.choice(len(snapshots), 3 if row["split"] == "train" else 1, replace=False):
        path = snapshots[int(k)]
        if path not in cache:
            cache[path] = load_generator(torch.load(path, weights_only=False))
        fake, _ = _channel(synthesize(wav, cache[path], seed=idx), rng, 1)
        for _, _, chunk in speech_windows(fake, PRE):
            specs.append(log_spectrogram(chunk, PRE | RAW).astype(np.float16))
            ceps.append(lfcc(chunk, PRE | LFCC))
            labels.append(1)
            kinds.append(f"neural:{path.stem}")
    if not specs:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, spec=np.stack(specs), lfcc=np.stack(ceps), label=np.array(labels), kind=np.array(kinds))
    return dest


def _channel(wav: np.ndarray, rng: np.random.Generator, label: int) -> tuple[np.ndarray, int]:
    return random_channel(wav, PRE["sample_rate"], rng)[0], label


def load_split(files: list[tuple[Path, dict]], split: str) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {"spec": [], "lfcc": [], "label": [], "kind": [], "file": []}
    for i, (path, row) in enumerate(files):
        if row["split"] != split:
            continue
        z = np.load(path)
        for k in ("spec", "lfcc", "label", "kind"):
            parts[k].append(z[k])
        # file ids: a real file and each of its fakes are separate "files" for file-level scores
        parts["file"].append(np.array([f"{i}:{k}" for k in z["kind"]]))
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_lcnn(model: LCNN, spec: np.ndarray, mean: float, std: float) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(spec), 64):
            x = (torch.from_numpy(spec[i : i + 64].astype(np.float32)) - mean) / std
            out.append(model(x).numpy())
    model.train()
    return np.concatenate(out)


def train_lcnn(tr: dict, va: dict, work: Path, args: argparse.Namespace) -> tuple[LCNN, dict, float, float]:
    mean = float(tr["spec"][::7].astype(np.float32).mean())
    std = float(tr["spec"][::7].astype(np.float32).std())
    model = LCNN(n_freq=tr["spec"].shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    ckpt = work / "lcnn_ckpt.pt"
    state = {"step": 0, "best_eer": 1.0, "best": None, "elapsed": 0.0, "log": []}
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        print(f"resumed at step {state['step']}")
    y = tr["label"]
    neural = np.char.startswith(tr["kind"].astype(str), "neural:")
    idx_real, idx_classic, idx_neural = (np.flatnonzero(m) for m in (y == 0, (y == 1) & ~neural, (y == 1) & neural))
    n_neural = round(args.batch // 2 * args.neural_share) if idx_neural.size else 0
    rng = np.random.default_rng(state["step"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1,
                                                last_epoch=state["step"] - 1 if state["step"] else -1)  # fmt: skip
    t0 = time.time() - state["elapsed"]
    crop = args.crop
    while state["step"] < min(args.steps, args.stop_step):
        b = args.batch // 2
        idx = np.concatenate(
            [rng.choice(idx_real, b), rng.choice(idx_classic, b - n_neural), rng.choice(idx_neural, n_neural)]
        )
        off = rng.integers(0, tr["spec"].shape[2] - crop + 1)
        x = (torch.from_numpy(tr["spec"][idx, :, off : off + crop].astype(np.float32)) - mean) / std
        for j in range(len(x)):  # frequency masking, one band per sample
            w = int(rng.integers(0, 20))
            f = int(rng.integers(0, x.shape[1] - w))
            x[j, f : f + w] = 0.0
        target = torch.from_numpy(y[idx].astype(np.float32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        state["step"] += 1
        if state["step"] % args.eval_every == 0 or state["step"] == min(args.steps, args.stop_step):
            logits = evaluate_lcnn(model, va["spec"], mean, std)
            m = summarize(va["label"], logits)
            state["elapsed"] = time.time() - t0
            state["log"].append({"step": state["step"], "loss": float(loss), "val": m, "elapsed": state["elapsed"]})
            print(f"step {state['step']} loss {float(loss):.4f} val eer {m['eer']:.4f} auc {m['auc']:.4f}"
                  f" ({state['elapsed']:.0f}s)", flush=True)  # fmt: skip
            if m["eer"] <= state["best_eer"]:
                state["best_eer"] = m["eer"]
                state["best"] = copy.deepcopy(model.state_dict())
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, ckpt)
        if time.time() - t0 > args.max_minutes * 60:
            print("time budget reached")
            break
    model.load_state_dict(state["best"] or model.state_dict())
    model.eval()
    return model, state, mean, std


def train_gmm(tr: dict, n_components: int, rng: np.random.Generator) -> GMMScorer:
    from sklearn.mixture import GaussianMixture

    gmm = GMMScorer(n_components=n_components, dim=tr["lfcc"].shape[1])
    for label, sub in ((0, gmm.real), (1, gmm.fake)):
        frames = tr["lfcc"][tr["label"] == label].transpose(0, 2, 1).reshape(-1, tr["lfcc"].shape[1])
        frames = frames[rng.choice(len(frames), min(len(frames), 60000), replace=False)]
        gm = GaussianMixture(n_components, covariance_type="diag", max_iter=100, random_state=0).fit(frames)
        sub.means.copy_(torch.from_numpy(gm.means_).float())
        sub.variances.copy_(torch.from_numpy(gm.covariances_).float())
        sub.weights.copy_(torch.from_numpy(gm.weights_).float())
    return gmm.eval()


def calibrate_logits(logits: np.ndarray, va: dict, note: str) -> tuple[dict, dict]:
    t, b = fit_temperature(logits, va["label"])
    probs = calibrate(logits, {"temperature": t, "bias": b})
    files = np.unique(va["file"])
    fscore = np.array([aggregate(AGGREGATION, probs[va["file"] == f], [None]) for f in files])
    flabel = np.array([int(va["label"][va["file"] == f][0]) for f in files])
    cal = calibration_record(logits, va["label"], fscore[flabel == 0], fpr=0.01, aggregation=AGGREGATION, note=note)
    metrics = {"windows": summarize(va["label"], logits), "files": summarize(flabel, fscore)}
    return cal, metrics


def card(tag: str, arch: dict, pre: dict, cal: dict, val_metrics: dict, recipe: dict, n: dict, vocoders: list) -> dict:
    return {
        "name": f"synthetic_speech.{tag}",
        "detector": "synthetic_speech",
        "architecture": arch,
        "preprocessing": pre,
        "calibration": cal,
        "training_data": {
            "train": "../shared/data real_speech + real_video audio (sources other than validation/test) and their "
            "copy-synthesis fakes (" + ", ".join(vocoders) + "), random AAC/Opus/MP3 + noise for both classes",
            "validation": "speechbrain, pyannote sample, LibriSpeech test-other (Resemblyzer), GRID (LipNet), LRS2 "
            "(deep_avsr) real speech and their copy-synthesis fakes; used for model selection and calibration",
            "test_only": "fake_speech (all) vs real ground truth of hifi-gan-demo, vits-demo, CycleGAN-VC2, StarGAN-VC",
            "counts": n,
            "licences": LICENCE_NOTE,
        },
        "metrics": {"validation (copy-synthesis, held-out sources)": val_metrics},
        "licence": "code Apache-2.0; weights research-only (trained on research-only data)",
        "recipe": recipe,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/synthetic_speech"))
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--steps", type=int, default=2000, help="length of the one-cycle schedule")
    ap.add_argument(
        "--stop-step",
        type=int,
        default=1000,
        help="stop here; the shipped run hit its time budget at step 1116, its last evaluation was at 1000 and the best"
        " validation checkpoint (step 600) ships",
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=300, help="training crop in frames (windows have 397)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--max-minutes", type=float, default=60.0, help="safety stop on slow machines")
    ap.add_argument("--vocoders", nargs="+", default=list(VOCODERS_V1), help="copy-synthesis methods, in rotation")
    ap.add_argument("--gmm-components", type=int, default=32)
    ap.add_argument("--prep-only", action="store_true")
    ap.add_argument("--tag", default="lcnn_v1", help="tag of the LCNN weights written")
    ap.add_argument("--neural", action="store_true", help="add neural-vocoder fakes (NEURAL_VOCODERS; lcnn_v2)")
    ap.add_argument("--neural-share", type=float, default=0.5, help="share of neural fakes in each fake half-batch")
    ap.add_argument("--neural-minutes", type=float, default=60.0, help="time budget for training the vocoders")
    ap.add_argument("--skip-gmm", action="store_true", help="do not retrain the GMM baseline")
    ap.add_argument("--min-bin", type=int, default=0, help="LCNN sees STFT bins from here up (128 = 4 kHz)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not DATA.is_dir():
        raise SystemExit(f"needs {DATA}")

    t0 = time.time()
    missing = set(args.vocoders) - set(available_vocoders())
    if missing:
        raise SystemExit(f"vocoders not available here: {', '.join(sorted(missing))} (pip install pyworld?)")
    vocoders = list(args.vocoders)
    rows = sources()
    files = []
    for i, row in enumerate(rows):
        path = prep_file(row, i, args.work, vocoders)
        if path is not None:
            files.append((path, row))
        if i % 20 == 0:
            print(f"prep {i + 1}/{len(rows)} ({time.time() - t0:.0f}s)", flush=True)
    if args.neural:
        snapshots, generators = train_neural_vocoders(rows, args.work, args.neural_minutes), {}
        for i, row in enumerate(rows):
            path = prep_neural(row, i, args.work, snapshots, generators)
            if path is not None:
                files.append((path, row))
            if i % 20 == 0:
                print(f"neural prep {i + 1}/{len(rows)} ({time.time() - t0:.0f}s)", flush=True)
        vocoders += [f"neural:{p.stem}" for p in snapshots]
    prep_s = time.time() - t0
    tr, va = load_split(files, "train"), load_split(files, "val")
    n = {s: {"files": len({r["file"] for _, r in files if r["split"] == s}),
             "real_windows": int((d["label"] == 0).sum()), "fake_windows": int((d["label"] == 1).sum())}
         for s, d in (("train", tr), ("val", va))}  # fmt: skip
    print(json.dumps(n), f"prep {prep_s:.0f}s")
    if args.prep_only:
        return
    if args.min_bin:  # the cache holds every bin; the network sees the upper ones only
        tr["spec"], va["spec"] = tr["spec"][:, args.min_bin :], va["spec"][:, args.min_bin :]

    t1 = time.time()
    model, state, mean, std = train_lcnn(tr, va, args.work, args)
    lcnn_s = time.time() - t1
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() for k, v in tensors.items()})  # measure what ships (float16)
    logits = evaluate_lcnn(model, va["spec"], mean, std)
    note = (
        "temperature/bias on validation window logits (copy-synthesis fakes of held-out real sources); "
        "threshold at 1% FPR on validation real file scores"
    )
    cal, vm = calibrate_logits(logits, va, note)
    print("lcnn val", json.dumps(vm))
    pre = (
        PRE
        | {"features": "logspec", "feat_mean": mean, "feat_std": std}
        | ({"min_bin": args.min_bin} if args.min_bin else {})
    )
    arch = {"name": "lcnn", "args": {"n_freq": int(tr["spec"].shape[1]), "channels": [8, 16, 24, 32], "hidden": 64,
                                      "dropout": 0.3, "stem_stride": 2}}  # fmt: skip
    recipe = {"optimiser": f"AdamW lr {args.lr} one-cycle, weight decay 1e-3, batch {args.batch} balanced",
              "steps": state["step"], "best_val_window_eer": state["best_eer"], "crop_frames": args.crop,
              "augmentation": "random time crop, frequency masking; channels at prep time", "log": state["log"],
              "wall_time_s": {"prep": round(prep_s), "train": round(lcnn_s)}, "threads": 1,
              "command": "python scripts/train_synthetic_speech.py"}  # fmt: skip
    if args.neural:
        recipe["neural_vocoders"] = {
            "generators": NEURAL_VOCODERS,
            "training": "forensics.train.neural_vocoder.train_vocoder: multi-resolution STFT + L1 log-mel loss "
            "(+ LSGAN multi-scale discriminator and feature matching from adversarial_from), AdamW 2e-3, batch 4 x "
            "8192 samples of training-split real speech, 1 thread",
            "fake_half_batch_share": args.neural_share,
        }
        recipe["command"] = (
            f"python scripts/train_synthetic_speech.py --work /tmp/speech2 --neural --tag {args.tag} --skip-gmm "
            f"--steps {args.steps} --stop-step {args.stop_step}"
        )
    save_weights(tensors, card(args.tag, arch, pre, cal, vm, recipe, n, vocoders), args.out)
    if args.skip_gmm:
        print(f"done in {time.time() - t0:.0f}s")
        return

    t2 = time.time()
    gmm = train_gmm(tr, args.gmm_components, np.random.default_rng(0))
    with torch.inference_mode():
        glog = np.concatenate(
            [gmm(torch.from_numpy(va["lfcc"][i : i + 64])).numpy() for i in range(0, len(va["lfcc"]), 64)]
        )
    gcal, gvm = calibrate_logits(glog, va, "temperature/bias on validation window log-likelihood ratios; threshold at "
                                 "1% FPR on validation real file scores")  # fmt: skip
    print("gmm val", json.dumps(gvm))
    gpre = PRE | LFCC
    garch = {"name": "gmm", "args": {"n_components": args.gmm_components, "dim": int(tr["lfcc"].shape[1])}}
    grecipe = {"optimiser": "sklearn GaussianMixture EM (diagonal), 60k random frames/class, at most 100 iterations",
               "wall_time_s": {"prep": round(prep_s), "train": round(time.time() - t2)},
               "command": "python scripts/train_synthetic_speech.py"}  # fmt: skip
    save_weights(dict(gmm.state_dict()), card("gmm_v1", garch, gpre, gcal, gvm, grecipe, n, vocoders), args.out)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
