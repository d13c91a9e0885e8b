"""Generic fine-tuning of any detector on labelled samples of a new campaign.

Starts from the detector's weights, builds training units with the detector's own ``units()``
(the same preprocessing as scanning), splits by file so frames of one video never straddle
train and validation, stops early on validation AUC, recalibrates, and writes safetensors plus
a card into the user's weights folder, usable at once as ``<detector>.<tag>``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors import create_detector
from forensics.detectors.base import Unit
from forensics.errors import ForensicsError
from forensics.media import open_media
from forensics.progress import Progress, ProgressEvent
from forensics.train.calibration import fit_temperature, threshold_at_fpr
from forensics.train.evaluate import Sample, collect
from forensics.train.metrics import summarize


def split_groups(samples: list[Sample], val_fraction: float, rng: np.random.Generator) -> tuple[set[str], set[str]]:
    """Train/validation groups, stratified by label; every group stays whole."""
    train: set[str] = set()
    val: set[str] = set()
    for label in (0, 1):
        groups = sorted({s.group for s in samples if s.label == label})
        if len(groups) < 2:
            kind = "real" if label == 0 else "fake"
            raise ForensicsError(f"need at least 2 {kind} files (one to train, one to validate); found {len(groups)}")
        rng.shuffle(groups)
        k = max(1, round(len(groups) * val_fraction))
        val.update(groups[:k])
        train.update(groups[k:])
    return train, val


def stratified_folds(labels: list[int], k: int = 2, seed: int = 0) -> np.ndarray:
    """A fold number per item: each label's items dealt over ``k`` folds in random order (for measuring
    what fine-tuning on some labelled files does to the others)."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    folds = np.zeros(len(labels_arr), dtype=int)
    for lab in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == lab)
        folds[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return folds


def _units(
    det: Any, samples: list[Sample], progress: Progress | None
) -> tuple[list[np.ndarray], list[list[Unit]], list[Sample], list[str]]:
    """Per kept file: stacked unit inputs and the units without them (times and tracks: aggregation
    and :meth:`Detector.context_logits` need them)."""
    xs, metas, kept, problems = [], [], [], []
    for i, s in enumerate(samples, 1):
        try:
            units = det.units(open_media(s.path))
            if not units:
                raise ForensicsError("nothing to score")
            xs.append(np.stack([u.x for u in units]).astype(np.float32))
            metas.append([dataclasses.replace(u, x=np.zeros(0, np.float32)) for u in units])
            kept.append(s)
        except (ForensicsError, OSError, ValueError, RuntimeError) as exc:
            problems.append(f"{s.path}: {exc}")
        if progress:
            progress(ProgressEvent("prepare", i, len(samples), s.path))
    return xs, metas, kept, problems


def _batches(sizes: list[int], batch_size: int, gen: Any) -> list[tuple[int, Any]]:
    """One epoch of shuffled mini-batches ``(bucket, indices)`` that never mix buckets; the batches of
    several buckets are interleaved at random."""
    import torch

    out = []
    for k, n in enumerate(sizes):
        order = torch.randperm(n, generator=gen)
        out += [(k, order[b : b + batch_size]) for b in range(0, n, batch_size)]
    if len(sizes) > 1:
        out = [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]
    return out


def _augment(x: Any, unit: str, gen: Any) -> Any:
    import torch

    if unit in ("face", "frame") and x.ndim == 4:
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def _file_scores(
    det: Any, model_logits: list[np.ndarray], tracks: list[list[int | None]], cal: dict[str, Any]
) -> np.ndarray:
    """File scores exactly as scanning computes them (:meth:`Detector.file_score`), under calibration ``cal``."""
    return np.array([det.file_score(lg, t, cal)[0] for lg, t in zip(model_logits, tracks, strict=True)])


def finetune(
    detector: str,
    real: list[Path],
    fake: list[Path],
    *,
    weights: str | None = None,
    tag: str = "finetuned",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int = 32,
    val_fraction: float = 0.25,
    patience: int | None = None,
    fpr: float = 0.01,
    seed: int = 0,
    device: str = "cpu",
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fine-tune ``detector`` on real/fake folders (or files); returns the new safetensors path.

    ``epochs``, ``lr`` and ``patience`` default to the detector's :class:`FinetuneRecipe`.
    """
    import torch

    from forensics.train import loop
    from forensics.weights import save_weights, user_weights_dir

    if not tag.replace("_", "").isalnum() or not tag.islower():
        raise ForensicsError(f"tag {tag!r} must be lowercase letters, digits and underscores")
    t0 = time.perf_counter()
    det = create_detector(detector, weights, device=device).load()
    recipe = det.spec.finetune
    epochs = recipe.epochs if epochs is None else epochs
    lr = recipe.lr if lr is None else lr
    patience = recipe.patience if patience is None else patience
    samples = collect(real=real, fake=fake)
    if not samples:
        raise ForensicsError("the real and fake folders hold no files")
    if not any(s.label == 0 for s in samples) or not any(s.label == 1 for s in samples):
        raise ForensicsError("fine-tuning needs both real and fake files")
    xs, metas, kept, problems = _units(det, samples, progress)
    if not kept:
        raise ForensicsError(f"no file gave anything to score; first problems: {problems[:3]}")
    rng = np.random.default_rng(seed)
    train_g, val_g = split_groups(kept, val_fraction, rng)
    tr = [i for i, s in enumerate(kept) if s.group in train_g]
    va = [i for i, s in enumerate(kept) if s.group in val_g]
    by_shape: dict[tuple[int, ...], list[int]] = {}  # units of one shape per bucket (image crops vary in size)
    for i in tr:
        by_shape.setdefault(xs[i].shape[1:], []).append(i)
    buckets = [
        (torch.from_numpy(np.concatenate([xs[i] for i in idx])),
         torch.from_numpy(np.concatenate([[kept[i].label] * len(xs[i]) for i in idx]).astype(np.float32)))
        for idx in by_shape.values()
    ]  # fmt: skip
    n_tr = sum(len(y) for _, y in buckets)
    y_va_files = np.array([kept[i].label for i in va])
    va_tracks = [[u.track for u in metas[i]] for i in va]

    model = det.model
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dtypes = {k: v.dtype for k, v in det.loaded_weights.tensors.items()}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ForensicsError(
            f"{det.weights_id} has no trainable parameters (e.g. a GMM baseline); fine-tune a network's weights instead"
        )
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    pos = float(sum(y.sum() for _, y in buckets))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((n_tr - pos) / max(pos, 1.0)))

    def val_logits() -> list[np.ndarray]:
        """Validation logits the way ``detect`` makes them: ``score_batch`` (which may keep per-unit outputs,
        such as lip_sync's sync curves) and then ``context_logits``."""
        model.eval()
        out = []
        for i in va:
            units = [dataclasses.replace(u, x=x) for u, x in zip(metas[i], xs[i], strict=True)]
            out.append(det.context_logits(units, det.score_batch(units)))
        return out

    y_va_units = np.concatenate([[kept[i].label] * len(xs[i]) for i in va]).astype(np.float64)

    def val_score(lg: list[np.ndarray]) -> tuple[float, float]:
        """Validation file AUC, ties broken by the lower unit log-loss."""
        auc = summarize(y_va_files, _file_scores(det, lg, va_tracks, det.calibration))["auc"]
        z = np.concatenate(lg).astype(np.float64)
        loss = float(np.mean(np.logaddexp(0, z) - y_va_units * z))
        return auc, -loss

    n_batches = sum(-(-len(y) // batch_size) for _, y in buckets)  # per epoch
    epoch_batches: list[tuple[int, Any]] = []
    totals = [0.0]  # this epoch's summed training loss

    def batch_loss(step: int) -> Any:
        """Batch ``step``: an epoch's shuffled batches are drawn at its first step."""
        nonlocal epoch_batches
        if step % n_batches == 0:
            epoch_batches, totals[0] = _batches([len(y) for _, y in buckets], batch_size, gen), 0.0
        for m in model.modules():  # small fine-tuning sets: keep the normalisation statistics
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        k, idx = epoch_batches[step % n_batches]
        x_b, y_b = buckets[k]
        xb = _augment(x_b[idx], det.spec.unit, gen).to(device)
        loss = loss_fn(det.logits_tensor(xb), y_b[idx].to(device))
        totals[0] += loss.item() * len(idx)
        return loss

    def validate(p: loop.Step) -> tuple[tuple[float, float], dict[str, Any]]:
        score = val_score(val_logits())
        epoch = p.step // n_batches
        train_loss = {"train_loss": totals[0] / n_tr} if epoch else {}
        return score, {"epoch": epoch, **train_loss, "val_auc": score[0], "val_loss": -score[1]}

    def report(p: loop.Step) -> None:
        epoch, j = divmod(p.step - 1, n_batches)
        progress(ProgressEvent("train", j + 1, n_batches, info={"epoch": epoch + 1, "loss": p.loss}))  # type: ignore[misc]
        if p.record is not None:
            progress(ProgressEvent("epoch", p.record["epoch"], epochs, info=p.record))  # type: ignore[misc]

    res = loop.fit(model, opt, batch_loss, steps=epochs * n_batches, validate=validate, validate_every=n_batches,
                   validate_first=True, patience=patience, log=report if progress else None, log_every=1)  # fmt: skip
    history = res.history
    lg = val_logits()
    unit_logits = np.concatenate(lg)
    unit_labels = np.concatenate([[kept[i].label] * len(xs[i]) for i in va])
    temp, bias = fit_temperature(unit_logits, unit_labels)
    cal = {"temperature": temp, "bias": bias, "aggregation": det.aggregation_name, "fpr": fpr}
    file_scores = _file_scores(det, lg, va_tracks, cal)
    cal["threshold"] = threshold_at_fpr(file_scores[y_va_files == 0], fpr)
    n_real_val = int((y_va_files == 0).sum())
    cal["note"] = f"fit on {len(va)} validation files ({n_real_val} real); threshold at {fpr:g} FPR on real files"
    base = det.card
    card = dict(base)
    card.update(
        name=f"{det.spec.name}.{tag}",
        calibration=cal,
        parent=det.weights_id,
        training_data=(
            f"fine-tuned from {det.weights_id} on {sum(s.label == 0 for s in kept)} real and "
            f"{sum(s.label == 1 for s in kept)} fake files from {[str(p) for p in real]} / {[str(p) for p in fake]}; "
            f"parent data: {base.get('training_data')}"
        ),
        metrics={"finetune_validation": summarize(y_va_files, file_scores) | {"history": history}},
        recipe={"epochs_run": len(history) - 1, "epochs": epochs, "lr": lr, "patience": patience,
                "batch_size": batch_size, "seed": seed,
                "wall_s": round(time.perf_counter() - t0, 1), "skipped_files": problems[:20]},
    )  # fmt: skip
    tensors = {k: v.detach().cpu().to(dtypes.get(k, v.dtype)).clone() for k, v in model.state_dict().items()}
    model.load_state_dict(base_state)  # leave the caller's detector as it was
    return save_weights(tensors, card, out_dir or user_weights_dir())
