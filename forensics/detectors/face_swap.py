"""Face-swap / face re-rendering detector: a small CNN scores aligned face crops.

Trained from real faces only on self-blended fakes (:mod:`forensics.train.sbi`). Every number
that shapes a crop (size, margin, mean/std, sampling rate) comes from the weights card.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from forensics.detectors.base import Detector, DetectorSpec, Unit
from forensics.errors import DetectorError, SkipDetection
from forensics.media.faces import align_face, align_matrix


def face_crop(image: np.ndarray, face: Any, preprocessing: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Aligned uint8 RGB crop of one face plus its 5 landmarks in crop pixels (None without landmarks)."""
    size, margin = int(preprocessing["size"]), float(preprocessing["margin"])
    crop = align_face(image, face, size=size, margin=margin)
    if face.landmarks is None:
        return crop, None
    m = align_matrix(face, size=size, margin=margin)
    pts = np.asarray(face.landmarks, np.float64)
    return crop, (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def normalize(crop: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """H x W x 3 uint8 RGB crops (or a stack of them) -> float32 CHW network input."""
    mean = np.asarray(preprocessing["mean"], np.float32)
    std = np.asarray(preprocessing["std"], np.float32)
    x = (crop.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def face_units(media: Any, preprocessing: dict[str, Any]) -> list[Unit]:
    """Every tracked face of the sampled frames as a normalised crop with its time, box and track."""
    fps = float(preprocessing["sample_fps"])
    tracks = media.faces(fps=fps)
    images = {f.index: f.image for f in media.frames(fps=fps)}
    step = 0.0 if media.info.kind == "image" else 1.0 / fps
    units = []
    for tr in tracks:
        for face in tr.faces:
            crop, _ = face_crop(images[face.frame], face, preprocessing)
            units.append(
                Unit(normalize(crop, preprocessing), face.t, face.t + step, frame=face.frame, box=face.box, track=tr.id)
            )
    if not units:
        raise SkipDetection("no face found")
    return sorted(units, key=lambda u: (u.start, u.track))


class FaceSwapDetector(Detector):
    """Scores every sampled face; the file score is the most suspicious face track's mean."""

    spec = DetectorSpec(
        name="face_swap",
        kinds=("image", "video"),
        unit="face",
        default_weights="sbi_v2",
        aggregation="track_max",
        description="blending-boundary CNN trained on self-blended real faces (face swap, face re-rendering)",
    )

    def build(self, weights: Any) -> Any:
        from forensics.nn.face_swap import FaceSwapNet

        arch = weights.card["architecture"]
        if arch.get("name") != "FaceSwapNet":
            raise DetectorError(f"face_swap cannot build architecture {arch.get('name')!r}")
        model = FaceSwapNet(**arch.get("args", {}))
        model.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return model

    def warm_up(self) -> Detector:
        from forensics.media.faces import default_face_detector

        default_face_detector().warm_up()
        return super().warm_up()

    def units(self, media: Any) -> list[Unit]:
        return face_units(media, self.preprocessing)

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Per-track mean calibrated score and face count; the most suspicious track first."""
        from forensics.detectors.base import calibrate

        probs = calibrate(logits, self.calibration)
        by: dict[Any, list[float]] = {}
        for u, p in zip(units, probs, strict=True):
            by.setdefault(u.track, []).append(float(p))
        tracks = sorted(
            (
                {"track": t, "faces": len(v), "mean_score": float(np.mean(v)), "max_score": max(v)}
                for t, v in by.items()
            ),
            key=lambda d: -d["mean_score"],
        )
        return {"tracks": tracks, "suspicious_track": tracks[0]["track"] if tracks else None}

    def explain(self, media: Any, segment: Any) -> np.ndarray | None:
        """Grad-CAM of ``segment``'s face mapped back onto the frame, cut to its box (None if not found)."""
        if segment.box is None or segment.frame is None or not hasattr(self.model, "features"):
            return None  # no face, or a published network without our Grad-CAM split
        pre = self.preprocessing
        fps = float(pre["sample_fps"])
        face = next(
            (
                f
                for tr in media.faces(fps=fps)
                for f in tr.faces
                if f.frame == segment.frame and np.allclose(f.box, segment.box, atol=0.5)
            ),
            None,
        )
        if face is None:
            return None
        image = next(f.image for f in media.frames(fps=fps) if f.index == face.frame)
        cam = self.heatmap(face_crop(image, face, pre)[0])
        x1, y1 = int(np.floor(face.box[0])), int(np.floor(face.box[1]))
        w, h = max(1, int(np.ceil(face.box[2])) - x1), max(1, int(np.ceil(face.box[3])) - y1)
        m = align_matrix(face, size=int(pre["size"]), margin=float(pre["margin"]))
        m[:, 2] += m[:, :2] @ np.array([x1, y1], np.float64)  # box-local pixels -> crop pixels
        return cv2.warpAffine(cam, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).clip(0, 1)

    def heatmap(self, crop_or_unit_x: np.ndarray) -> np.ndarray:
        """Grad-CAM of the fake logit on one face: H x W float in [0, 1] (1 = drove the score up).

        Accepts an H x W x 3 uint8 RGB crop (normalised with the card's numbers) or a unit's
        3 x H x W float32 input.
        """
        import torch

        a = np.asarray(crop_or_unit_x)
        if a.ndim != 3:
            raise ValueError("heatmap expects one H x W x 3 crop or one 3 x H x W unit input")
        x = normalize(a, self.preprocessing) if a.dtype == np.uint8 else a.astype(np.float32)
        model = self.model
        with torch.enable_grad():
            feats = model.features(torch.from_numpy(x)[None].to(self.device)).detach().requires_grad_(True)
            logit = model.classify(feats)[0]
            (grad,) = torch.autograd.grad(logit, feats)
        cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * feats).sum(1))[0].detach().cpu().numpy()
        cam = cv2.resize(cam, (x.shape[2], x.shape[1]), interpolation=cv2.INTER_LINEAR)
        top = float(cam.max())
        return (cam / top if top > 0 else np.zeros_like(cam)).astype(np.float32)
