"""``gan_fingerprint``: GAN / diffusion upsampling traces in images and sampled video frames.

Units are a few native-resolution square crops per frame (the frame is never downscaled first:
that would erase the trace), or, for published weights whose authors scored whole resized
images (the card's ``resize``, e.g. Tiny-LaDeDa's 256 x 256), the whole frame resized. A small
CNN on neighbouring-pixel and Laplacian residuals (:mod:`forensics.nn.gan_fingerprint`) gives
one logit per crop. Head weights (``ResidualSpectralHead``, e.g. ``ladeda_head_v1``) score one unit per
frame instead: a small head over frozen features of the frame's centre square (:meth:`GanFingerprint.frame_features`:
the residual network's crop features, :func:`spectral_stats`, and optionally the patch features of published
Tiny-LaDeDa weights the user installs). When the user has registered generator fingerprints
(:func:`add_fingerprint`), the result's evidence names the closest one.

Fingerprints live in ``<user cache>/fingerprints``: ``NAME.safetensors`` (the mean embedding) and
``NAME.json`` (weights id, source files with their sha256, and the file's own sha256).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors.base import Detector, DetectorSpec, FinetuneRecipe, Unit, calibrate
from forensics.errors import ForensicsError, MediaError, SkipDetection, WeightsError


def crop_boxes(
    height: int, width: int, *, crop: int, max_crops: int, align: int, min_side: int
) -> list[tuple[int, ...]]:
    """Deterministic square crop boxes ``(x1, y1, x2, y2)`` spread over the central part of a frame.

    The side is ``crop``, or the frame's short side when smaller (rounded down to ``align``).
    Offsets are multiples of ``align`` so a crop keeps the frame's pixel-grid phase. Raises
    :class:`SkipDetection` when the short side is under ``min_side``.
    """
    side = min(crop, height, width) // align * align
    if side < min_side:
        raise SkipDetection(f"frame {width}x{height} is smaller than the {min_side} px minimum crop")
    per_axis = int(np.ceil(np.sqrt(max_crops)))
    nx = max(1, min(per_axis, width // side))
    ny = max(1, min(per_axis, height // side))

    def starts(extent: int, n: int) -> list[int]:
        room = extent - side
        if n == 1:
            return [room // 2 // align * align]
        return [round(v) // align * align for v in np.linspace(0.2 * room, 0.8 * room, n)]

    boxes = [(x, y, x + side, y + side) for y in starts(height, ny) for x in starts(width, nx)]
    return boxes[:max_crops]


def face_crop_box(
    face: tuple[float, float, float, float], height: int, width: int, *, crop: int, align: int
) -> tuple[int, int, int, int]:
    """A native-resolution square crop box ``(x1, y1, x2, y2)`` centred on a face box, inside the frame.

    Same side as :func:`crop_boxes` (``crop`` or the short side, rounded down to ``align``); the
    offsets are moved onto the ``align`` grid so the crop keeps the frame's pixel-grid phase.
    """
    side = min(crop, height, width) // align * align
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    x = int(np.clip(cx - side / 2, 0, width - side)) // align * align
    y = int(np.clip(cy - side / 2, 0, height - side)) // align * align
    return x, y, x + side, y + side


def to_input(crop: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """RGB uint8 ``H x W x 3`` -> normalised float32 ``3 x H x W``."""
    x = crop.astype(np.float32).transpose(2, 0, 1) / 255.0
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray((x - m) / s)


SPECTRAL_BINS = 16
SPECTRAL_PERIODS = (2, 4, 8)


def residual_log_spectrum(rgb: np.ndarray, side: int) -> np.ndarray:
    """Log power spectrum ``(n, n)`` (unshifted) of the noise residual of the centre square of the grey image.

    The square's side ``n`` is ``side`` or the short side, a multiple of 8, and it starts on the 8-pixel
    grid (a JPEG block grid keeps its phase); residual = image minus its 3 x 3 median; Hann window.
    Raises :class:`SkipDetection` under 32 px.
    """
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    n = min(side, h, w) // 8 * 8
    if n < 32:
        raise SkipDetection(f"image {w}x{h} is too small for spectral statistics")
    y, x = (h - n) // 16 * 8, (w - n) // 16 * 8
    sq = grey[y : y + n, x : x + n]
    res = sq.astype(np.float32) - cv2.medianBlur(sq, 3).astype(np.float32)
    win = np.hanning(n).astype(np.float32)
    return np.log(np.abs(np.fft.fft2(res * np.outer(win, win))) ** 2 + 1e-6).astype(np.float32)


def spectral_stats(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    """Spectral statistics of an image's noise residual (:func:`residual_log_spectrum`), ``1 + 16 + 9`` values:

    the mean log power (the residual's level); the azimuthally averaged log power in ``SPECTRAL_BINS``
    radial bins up to the Nyquist frequency, less that mean (the spectrum's shape); and the periodic-peak
    energy of upsampling grids: at each period of ``SPECTRAL_PERIODS`` the log power at the frequencies
    ``(n/p, 0)``, ``(0, n/p)``, ``(n/p, n/p)`` above its 5 x 5 median neighbourhood.
    """
    import cv2

    power = residual_log_spectrum(rgb, side)
    n = power.shape[0]
    f = np.fft.fftfreq(n)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / 0.5
    bins = np.minimum((radius * SPECTRAL_BINS).astype(int), SPECTRAL_BINS - 1)
    keep = radius > 0
    counts = np.bincount(bins[keep], minlength=SPECTRAL_BINS)
    radial = np.bincount(bins[keep], weights=power[keep], minlength=SPECTRAL_BINS) / np.maximum(counts, 1)
    level = float(power[keep].mean())
    peak = power - cv2.medianBlur(power, 5)
    peaks = [peak[i, j] for p in SPECTRAL_PERIODS for i, j in ((n // p, 0), (0, n // p), (n // p, n // p))]
    return np.concatenate([[level], radial - level, peaks]).astype(np.float32)


def patch_pooled(det: Any, rgb: np.ndarray) -> np.ndarray:
    """Pooled patch features of a published Tiny-LaDeDa detector ``det`` on an RGB image at its own
    resolution: the patch features' mean and std (``2 C``), then the patch logits' mean, std and max."""
    import torch

    p = det.preprocessing
    x = torch.from_numpy(to_input(rgb, p["mean"], p["std"])[None]).to(det.device)
    net = det.model.net  # TinyLaDeDa inside the one-logit wrapper
    with torch.inference_mode():
        f = net.patch_features(x.contiguous(memory_format=torch.channels_last))
        pl = net.fc(f.permute(0, 2, 3, 1))[..., 0]
    f, pl = f[0].flatten(1).float().cpu().numpy(), pl.flatten().float().cpu().numpy()
    return np.concatenate([f.mean(1), f.std(1), [pl.mean(), pl.std(), pl.max()]]).astype(np.float32)


class GanFingerprint(Detector):
    """Upsampling-trace detector for fully generated images and frames, with generator attribution."""

    spec = DetectorSpec(
        name="gan_fingerprint",
        kinds=("image", "video"),
        unit="frame",
        default_weights="residual_v1",
        aggregation="mean",
        description="GAN/diffusion upsampling traces in native-resolution crops; attribution to user fingerprints",
        # measured: scripts/eval_gan_fingerprint.py --finetuned (Stable Diffusion AUC 0.510 with 5 epochs at 1e-4)
        finetune=FinetuneRecipe(epochs=30, lr=1e-3, patience=30),
    )

    def build(self, weights: Any) -> Any:
        from forensics.nn.gan_fingerprint import ResidualFingerprintNet, ResidualSpectralHead

        arch = weights.card["architecture"]
        args = dict(arch["args"])
        if arch["name"] == "ResidualSpectralHead":
            args["backbone"] = dict(args["backbone"], widths=tuple(args["backbone"]["widths"]))
            model: Any = ResidualSpectralHead(**args)
        else:
            if "widths" in args:
                args["widths"] = tuple(args["widths"])
            model = ResidualFingerprintNet(**args)
        model.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return model

    @property
    def has_head(self) -> bool:
        """Whether the weights are a feature head (one unit per frame: frozen residual features + spectral
        statistics of its centre square) rather than a per-crop network."""
        return self.card["architecture"]["name"] == "ResidualSpectralHead"

    def frame_features(self, image: np.ndarray) -> np.ndarray:
        """A head's input for one frame, from its centre ``side`` px square at native resolution: the card's
        ``blocks`` in order (default residual, spectral). ``residual``: the backbone crops' mean embedding and
        their logits' mean and std (also for plain residual weights, whose network is the backbone, given a
        ``side``); ``spectral``: :func:`spectral_stats`; any other block: :func:`patch_pooled` of the published
        detector the card's ``readers`` names for it."""
        p = self.preprocessing
        h, w = image.shape[:2]
        ch, cw = min(h, int(p["side"])), min(w, int(p["side"]))
        sq = image[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
        parts = []
        for block in p.get("blocks", ["residual", "spectral"]):
            if block == "residual":
                parts.append(self._residual_block(sq))
            elif block == "spectral":
                parts.append(spectral_stats(sq, int(p["side"])))
            else:
                parts.append(patch_pooled(self.reader(block), sq))
        return np.concatenate(parts).astype(np.float32)

    def _residual_block(self, sq: np.ndarray) -> np.ndarray:
        import torch

        p = self.preprocessing
        boxes = crop_boxes(*sq.shape[:2], crop=int(p["crop"]), max_crops=int(p["max_crops"]), align=int(p["align"]),
                           min_side=int(p["min_side"]))  # fmt: skip
        xs = np.stack([to_input(sq[y1:y2, x1:x2], p["mean"], p["std"]) for x1, y1, x2, y2 in boxes])
        backbone = getattr(self.model, "backbone", self.model)  # a head's frozen network, or the network itself
        with torch.inference_mode():
            emb = backbone.embed(torch.from_numpy(xs).to(self.device))
            logits = backbone.head(emb)[:, 0].float().cpu().numpy()
        return np.concatenate([emb.float().cpu().numpy().mean(axis=0), [logits.mean(), logits.std()]])

    def reader(self, block: str) -> Any:
        """The published detector whose patch features feed ``block`` (card ``preprocessing.readers``), loaded
        once; such weights are research-only and installed by the user, so a missing one is a clear error."""
        if not hasattr(self, "_readers"):
            self._readers: dict[str, Any] = {}
        if block not in self._readers:
            from forensics.weights import registry

            name = self.preprocessing.get("readers", {}).get(block)
            if name is None:
                raise WeightsError(f"{self.weights}: the card names no weights for feature block {block!r}")
            entry = registry().get(name)
            if entry is None or entry.source not in ("user", "builtin"):
                raise WeightsError(
                    f"{self.weights} reads the patch features of {name} (research-only, not shipped): install it"
                    f" with `forensics weights get {name}`, or offline `forensics weights get --from FOLDER {name}`"
                    " (FOLDER holding the publisher's original file)"
                )
            self._readers[block] = GanFingerprint(name, device=self.device).load()
        return self._readers[block]

    def units(self, media: Any) -> list[Unit]:
        p = self.preprocessing
        fps = float(p["sample_fps"])
        frames = media.frames(fps=fps) if media.info.kind == "video" else media.frames()
        span = 1.0 / fps if media.info.kind == "video" else 0.0
        if self.has_head:
            self.load()
            return [Unit(self.frame_features(fr.image), fr.t, min(fr.t + span, max(media.info.duration or 0.0, fr.t)),
                         frame=fr.index, box=(0.0, 0.0, float(fr.image.shape[1]), float(fr.image.shape[0])))
                    for fr in frames]  # fmt: skip
        if p.get("resize"):
            return [self._resized_unit(fr, min(fr.t + span, max(media.info.duration or 0.0, fr.t))) for fr in frames]
        faces = self._faces_by_frame(media) if p.get("face_crops") else {}
        out: list[Unit] = []
        for fr in frames:
            end = min(fr.t + span, max(media.info.duration or 0.0, fr.t))
            h, w = fr.image.shape[:2]
            crop, align = int(p["crop"]), int(p["align"])
            boxes = crop_boxes(h, w, crop=crop, max_crops=int(p["max_crops"]), align=align, min_side=int(p["min_side"]))
            regions: list[tuple[tuple[int, ...], int | None]] = [(b, None) for b in boxes]
            for face in faces.get(fr.index, []):
                box = face_crop_box(face.box, h, w, crop=crop, align=align)
                if all(box != b for b, _ in regions):
                    regions.append((box, face.track))
            for (x1, y1, x2, y2), track in regions:
                x = to_input(fr.image[y1:y2, x1:x2], p["mean"], p["std"])
                box = (float(x1), float(y1), float(x2), float(y2))
                out.append(Unit(x, fr.t, end, frame=fr.index, box=box, track=track))
        return out

    def _resized_unit(self, frame: Any, end: float) -> Unit:
        """The whole frame resized to the card's ``resize`` square (bilinear, as PIL resizes for torchvision)."""
        from PIL import Image

        p = self.preprocessing
        side = int(p["resize"])
        h, w = frame.image.shape[:2]
        image = np.asarray(Image.fromarray(frame.image).resize((side, side), Image.Resampling.BILINEAR))
        box = (0.0, 0.0, float(w), float(h))
        return Unit(to_input(image, p["mean"], p["std"]), frame.t, end, frame=frame.index, box=box)

    def _faces_by_frame(self, media: Any) -> dict[int, list[Any]]:
        """Faces of the shared face pass (``face_fps``, as face_swap samples them: memoised once per file)."""
        fps = float(self.preprocessing.get("face_fps", 2.0))
        out: dict[int, list[Any]] = {}
        for tr in media.faces(fps=fps):
            for face in tr.faces:
                out.setdefault(face.frame, []).append(face)
        return out

    def embeddings(self, xs: np.ndarray) -> np.ndarray:
        """Penultimate-layer embeddings ``(N, D)`` for a stack of unit inputs (a head's units carry their
        frame's mean backbone embedding first)."""
        if self.has_head:
            if self.preprocessing.get("blocks", ["residual"])[0] != "residual":
                raise ForensicsError(f"{self.weights_id} keeps no residual embedding: it cannot attribute")
            return np.asarray(xs[:, : self.model.backbone.head.in_features], np.float32)
        return self.batched(self.model.embed, xs, np.zeros((0, 0), np.float32))

    def file_embedding(self, media_or_path: Any) -> np.ndarray:
        """One L2-normalised embedding for a file: the mean of its units' embeddings."""
        media = self._prepare(media_or_path)
        self.load()
        units = self.units(media)
        if not units:
            raise SkipDetection("nothing to score")
        return _unit_norm(self.embeddings(np.stack([u.x for u in units])).mean(axis=0))

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Mean crop scores of face regions and of the rest (``regions``) when faces were cropped, and
        ``{"attribution": {"name", "similarity", "candidates"}}`` when fingerprints for these weights exist.
        """
        out: dict[str, Any] = {}
        face = np.array([u.track is not None for u in units])
        if face.any():
            probs = calibrate(np.asarray(logits, np.float64), self.calibration)
            out["regions"] = {"face": float(probs[face].mean()), "frame": float(probs[~face].mean())}
        prints = load_fingerprints(self.weights_id)
        if not prints:
            return out
        emb = _unit_norm(self.embeddings(np.stack([u.x for u in units])).mean(axis=0))
        sims = {name: float(np.dot(emb, vec)) for name, vec in prints.items()}
        best = max(sims, key=sims.__getitem__)
        out["attribution"] = {"name": best, "similarity": sims[best], "candidates": sims, "measure": "cosine"}
        return out


# -- generator fingerprints --------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _unit_norm(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def fingerprints_dir() -> Path:
    """Where fingerprints are stored: next to the user's weights (``<cache>/fingerprints``)."""
    from forensics.weights import user_weights_dir

    return user_weights_dir().parent / "fingerprints"


def add_fingerprint(name: str, folder: str | Path, *, weights: str | None = None) -> Path:
    """Build a generator fingerprint from a folder of images of one generator and store it.

    The fingerprint is the normalised mean of the per-image embeddings of ``gan_fingerprint``
    (``weights``: default weights when ``None``). Images that cannot be read or are too small are
    skipped. Returns the path of the written ``NAME.safetensors``; its ``NAME.json`` records the
    weights id, every source file with its sha256, and the fingerprint file's sha256.

    Raises :class:`ForensicsError` for a bad name or a folder without usable images.
    """
    from safetensors.numpy import save_file

    from forensics.media.core import file_sha256
    from forensics.weights import sha256_file

    if not _NAME.match(name):
        raise ForensicsError(f"fingerprint name {name!r} must be letters, digits, '_', '-' or '.' (max 64)")
    src = Path(folder)
    if not src.is_dir():
        raise ForensicsError(f"not a folder: {src}")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    det = GanFingerprint(weights)
    vecs, used = [], []
    for path in files:
        try:
            vecs.append(det.file_embedding(path))
        except (MediaError, SkipDetection):
            continue
        used.append({"file": path.name, "sha256": file_sha256(path)})
    if not vecs:
        raise ForensicsError(f"no usable image in {src} (looked for {', '.join(IMAGE_SUFFIXES)})")
    emb = _unit_norm(np.mean(vecs, axis=0))
    out = fingerprints_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.safetensors"
    save_file({"embedding": emb}, str(path))
    record = {
        "name": name,
        "weights": det.weights_id,
        "n_images": len(used),
        "sources": used,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "file": path.name,
        "sha256": sha256_file(path),
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def list_fingerprints() -> list[dict[str, Any]]:
    """Every stored fingerprint's record, with ``status`` ``"ok"`` or what is wrong with its file."""
    from forensics.weights import sha256_file

    out = []
    folder = fingerprints_dir()
    for card in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(card.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        path = folder / rec.get("file", card.with_suffix(".safetensors").name)
        if not path.exists():
            rec["status"] = f"missing file {path.name}"
        elif sha256_file(path) != rec.get("sha256"):
            rec["status"] = "checksum mismatch: the file was modified or corrupted"
        else:
            rec["status"] = "ok"
        out.append(rec)
    return out


def load_fingerprints(weights_id: str) -> dict[str, np.ndarray]:
    """Verified fingerprint embeddings made with ``weights_id`` (others are not comparable)."""
    from safetensors.numpy import load_file

    out = {}
    for rec in list_fingerprints():
        if rec["status"] != "ok" or rec.get("weights") != weights_id:
            continue
        try:
            out[rec["name"]] = _unit_norm(load_file(str(fingerprints_dir() / rec["file"]))["embedding"])
        except Exception as exc:  # safetensors raises its own error type for broken files
            raise WeightsError(f"fingerprint {rec['name']} is unreadable: {exc}") from exc
    return out
