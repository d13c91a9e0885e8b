"""Faces: a small detector interface, MTCNN behind it, IoU tracking and aligned crops."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

if TYPE_CHECKING:  # for annotations only: core imports this module (lazily), never the reverse
    from forensics.media.core import Frame


@dataclass
class Face:
    """One detected face in one frame. Coordinates are pixels of the (rotated) frame."""

    frame: int
    t: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray | None = None  # 5 x 2: left eye, right eye, nose, mouth left, mouth right
    track: int = -1

    @property
    def size(self) -> float:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass
class FaceTrack:
    """The same face followed across sampled frames."""

    id: int
    faces: list[Face] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.faces[0].t

    @property
    def end(self) -> float:
        return self.faces[-1].t


#: one detected face: box (x1, y1, x2, y2) in frame pixels, score, 5 x 2 landmarks or None
Detection = tuple[tuple[float, float, float, float], float, "np.ndarray | None"]


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB image."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Return ``(box, score, landmarks)`` for every face in an H x W x 3 uint8 RGB image."""
        ...

    def cache_key(self) -> tuple:
        """Settings that change the output, for memoisation."""
        ...


NEAR_FACE_PX = 80.0  # face size at which :meth:`MTCNNDetector.detect_near` searches


class MTCNNDetector:
    """facenet-pytorch's MTCNN (weights ship in its wheel), run on a downscaled copy of the frame.

    ``max_side`` bounds the longest side the network sees; boxes are scaled back to the frame.
    """

    def __init__(
        self, *, max_side: int = 640, min_face: int = 40, threshold: float = 0.92, device: str = "cpu"
    ) -> None:
        self.max_side = max_side
        self.min_face = min_face
        self.threshold = threshold
        self.device = device
        self._mtcnn = None
        self._lock = threading.Lock()

    def cache_key(self) -> tuple:
        return ("mtcnn", self.max_side, self.min_face, self.threshold)

    def warm_up(self) -> None:
        """Import facenet-pytorch, build the networks and run them once now (otherwise done on first use)."""
        self.detect(np.zeros((64, 64, 3), np.uint8))

    def _net(self):
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            # min_face_size is in pixels of the downscaled image the network sees.
            self._mtcnn = MTCNN(keep_all=True, device=self.device, min_face_size=20, post_process=False)
        return self._mtcnn

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        return self._run(image, scale=min(1.0, self.max_side / max(h, w)), offset=(0.0, 0.0), min_size=20, full=(w, h))

    def detect_near(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> list[Detection]:
        """Faces found again near known ``boxes`` (tracking). Each box is first refined by MTCNN's last
        stage alone (:meth:`refine`); where that loses the face, the region of three box sides around
        the box is searched at a scale where the face is about ``NEAR_FACE_PX`` pixels. Both are several
        times cheaper than a full-frame pass. Faces that appear elsewhere are not found: callers re-run
        :meth:`detect`.
        """
        h, w = image.shape[:2]
        out: list[Detection] = []
        for x1, y1, x2, y2 in boxes:
            refined = self.refine(image, (x1, y1, x2, y2))
            if refined is not None:
                if all(iou(refined[0], g[0]) < 0.5 for g in out):
                    out.append(refined)
                continue
            side = max(x2 - x1, y2 - y1, 1.0)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            left, top = int(max(0, cx - 1.5 * side)), int(max(0, cy - 1.5 * side))
            right, bottom = int(min(w, cx + 1.5 * side)), int(min(h, cy + 1.5 * side))
            if right - left < 12 or bottom - top < 12:
                continue
            scale = min(1.0, NEAR_FACE_PX / side)
            found = self._run(
                image[top:bottom, left:right], scale=scale, offset=(left, top),
                min_size=int(np.clip(side * scale / 2, 20, 40)), full=(w, h),
            )  # fmt: skip
            out.extend(f for f in found if all(iou(f[0], g[0]) < 0.5 for g in out))
        return out

    def refine(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Detection | None:
        """The face near ``box`` by MTCNN's output network (O-Net) alone, as its third stage does.

        The box is made square, cut from the full-resolution frame and scored at 48 x 48; O-Net's
        regression moves it onto the face and places the landmarks. Returns ``None`` when O-Net's
        face probability falls under the threshold, the face gets smaller than ``min_face`` or the
        box drifts off the one it started from (then search the region instead).
        """
        import torch
        from torch.nn import functional as F

        h, w = image.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        sq = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        x1, y1 = max(int(sq[0]), 1), max(int(sq[1]), 1)  # MTCNN's pad(): 1-based, clipped to the frame
        x2, y2 = min(int(sq[2]), w), min(int(sq[3]), h)
        if x2 - x1 < 12 or y2 - y1 < 12:
            return None
        crop = torch.from_numpy(np.ascontiguousarray(image[y1 - 1 : y2, x1 - 1 : x2])).permute(2, 0, 1)[None]
        with self._lock, torch.inference_mode():
            x = (F.interpolate(crop.float(), size=(48, 48), mode="area") - 127.5) * 0.0078125
            reg, lm, pr = self._net().onet(x)
        prob = float(pr[0, 1])
        bw, bh = sq[2] - sq[0] + 1, sq[3] - sq[1] + 1
        lm = lm[0].numpy()
        pts = np.stack([bw * lm[:5] + sq[0] - 1, bh * lm[5:] + sq[1] - 1], axis=1).astype(np.float32)
        b = sq + reg[0].numpy() * np.array([bw, bh, bw, bh])
        out = (max(0.0, float(b[0])), max(0.0, float(b[1])), min(float(w), float(b[2])), min(float(h), float(b[3])))
        if prob < self.threshold or min(out[2] - out[0], out[3] - out[1]) < self.min_face or iou(out, box) < 0.3:
            return None
        return out, prob, pts

    def _run(
        self, image: np.ndarray, *, scale: float, offset: tuple[float, float], min_size: int, full: tuple[int, int]
    ) -> list[Detection]:
        """MTCNN on ``image`` resized by ``scale`` (smallest face ``min_size`` px there); results in frame pixels."""
        h, w = image.shape[:2]
        small = (
            cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            if scale < 1
            else image
        )
        import torch

        with self._lock, torch.inference_mode():
            net = self._net()
            net.min_face_size = min_size
            boxes, probs, points = net.detect(np.ascontiguousarray(small), landmarks=True)
        out: list[Detection] = []
        if boxes is None:
            return out
        ox, oy = offset
        for box, p, pts in zip(boxes, probs, points, strict=False):
            if p is None or p < self.threshold:
                continue
            b = (box[0] / scale + ox, box[1] / scale + oy, box[2] / scale + ox, box[3] / scale + oy)
            b = (
                max(0.0, float(b[0])),
                max(0.0, float(b[1])),
                min(float(full[0]), float(b[2])),
                min(float(full[1]), float(b[3])),
            )
            if min(b[2] - b[0], b[3] - b[1]) < self.min_face:
                continue
            out.append((b, float(p), np.asarray(pts, dtype=np.float32) / scale + np.float32([ox, oy])))
        return out


_DEFAULT: MTCNNDetector | None = None


def default_face_detector() -> MTCNNDetector:
    """A process-wide MTCNN detector, created on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = MTCNNDetector()
    return _DEFAULT


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Links detections frame by frame into tracks (greedy IoU); :func:`track_faces` runs it over a list.

    A track survives up to ``max_gap`` sampled frames without a match. When the detector can
    search near known faces (``detect_near``), the whole frame is searched only every
    ``redetect_every`` sampled frames, when no track is live or when the faces were lost; in
    between, live faces are found again near their last box (a new face appears at the next
    full search). With ``scene_gate`` (grey levels), a due full search waits, at most
    ``max_deferrals`` times in a row, while nothing outside the live faces and their bodies changed
    that much since the last one on a grey thumbnail about 64 px wide. ``full_searches`` counts them.
    """

    def __init__(
        self,
        detector: FaceDetector,
        *,
        min_iou: float = 0.3,
        max_gap: int = 3,
        redetect_every: int = 4,
        scene_gate: float | None = 16.0,
        max_deferrals: int = 3,
    ) -> None:
        self.detector = detector
        self.min_iou, self.max_gap, self.redetect_every = min_iou, max_gap, redetect_every
        self.scene_gate, self.max_deferrals = scene_gate, max_deferrals
        self.tracks: list[FaceTrack] = []
        self.frames_seen = 0
        self.full_searches = 0
        self.last_t = -float("inf")  # time of the last frame given to :meth:`update`
        self._last_seen: dict[int, int] = {}
        self._last_full = -redetect_every
        self._thumb: np.ndarray | None = None  # the frame of the last full search, small and grey

    def live(self) -> list[FaceTrack]:
        """Tracks that a later frame may still extend."""
        return [t for t in self.tracks if self.frames_seen - self._last_seen[t.id] <= self.max_gap]

    def update(self, fr: Frame) -> list[Face]:
        """Detect faces in the next sampled frame and attach them to tracks; returns them."""
        fi = self.frames_seen
        live = self.live()
        near = getattr(self.detector, "detect_near", None)
        dets = []
        since = fi - self._last_full
        if near is not None and live and (since < self.redetect_every or self._scene_still(fr.image, live, since)):
            dets = near(fr.image, [t.faces[-1].box for t in live])
        if not dets:
            dets = self.detector.detect(fr.image)
            self._last_full = fi
            self.full_searches += 1
            self._thumb = _thumbnail(fr.image) if self.scene_gate is not None else None
        faces = [Face(fr.index, fr.t, box, score, lm) for box, score, lm in dets]
        pairs = sorted(
            ((iou(t.faces[-1].box, f.box), ti, fj) for ti, t in enumerate(live) for fj, f in enumerate(faces)),
            reverse=True,
        )
        used_t: set[int] = set()
        used_f: set[int] = set()
        for score, ti, fj in pairs:
            if score < self.min_iou or ti in used_t or fj in used_f:
                continue
            used_t.add(ti)
            used_f.add(fj)
            faces[fj].track = live[ti].id
            live[ti].faces.append(faces[fj])
            self._last_seen[live[ti].id] = fi
        for fj, f in enumerate(faces):
            if fj not in used_f:
                tid = len(self.tracks)
                f.track = tid
                self.tracks.append(FaceTrack(tid, [f]))
                self._last_seen[tid] = fi
        self.frames_seen += 1
        self.last_t = fr.t
        return faces

    def _scene_still(self, image: np.ndarray, live: list[FaceTrack], since: int) -> bool:
        """Whether a due full search may wait: nothing outside the live faces (and the bodies below them)
        changed by ``scene_gate`` grey levels since the last full search, so no new face can have come
        in. At most ``max_deferrals`` searches in a row wait."""
        if self.scene_gate is None or self._thumb is None or since >= self.redetect_every * (1 + self.max_deferrals):
            return False
        thumb = _thumbnail(image)
        if thumb.shape != self._thumb.shape:
            return False
        keep = np.ones(thumb.shape, bool)
        sy, sx = thumb.shape[0] / image.shape[0], thumb.shape[1] / image.shape[1]
        for t in live:
            x1, y1, x2, y2 = t.faces[-1].box
            w, h = x2 - x1, y2 - y1
            keep[
                max(0, int((y1 - 0.5 * h) * sy)) :, max(0, int((x1 - 2 * w) * sx)) : int(np.ceil((x2 + 2 * w) * sx))
            ] = False
        diff = np.abs(thumb - self._thumb)[keep]
        return diff.size == 0 or float(diff.max()) < self.scene_gate


def _thumbnail(image: np.ndarray, width: int = 64) -> np.ndarray:
    """A small grey copy of a frame: each pixel the mean of a ``k x k`` block, ``k = W // width``
    (the frame's edge remainder dropped: area resizing by a whole factor is ~3x faster on 720p)."""
    h, w = image.shape[:2]
    k = max(1, w // width)
    hk, wk = max(1, h // k), max(1, w // k)
    small = cv2.resize(image[: hk * k, : wk * k], (wk, hk), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def track_faces(frames: Iterable[Frame], detector: FaceDetector, **kwargs: Any) -> list[FaceTrack]:
    """Detect faces in every frame and link them into tracks (see :class:`FaceTracker` for ``kwargs``)."""
    tracker = FaceTracker(detector, **kwargs)
    for fr in frames:
        tracker.update(fr)
    return tracker.tracks


def align_matrix(face: Face, *, size: int, margin: float, rotate: bool = True) -> np.ndarray:
    """The 2 x 3 affine map from frame pixels to a square ``size`` crop around ``face``.

    ``margin`` is a fraction of the box side added on every side; with landmarks and ``rotate``
    the map also turns the face so the eyes are level.
    """
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    angle = 0.0
    if rotate and face.landmarks is not None:
        (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
        angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    return m


def align_face(
    image: np.ndarray, face: Face, *, size: int = 224, margin: float = 0.3, rotate: bool = True
) -> np.ndarray:
    """A square ``size`` x ``size`` crop around the face with ``margin`` (fraction of the box side).

    With landmarks and ``rotate``, the crop is rotated so the eyes are level. Pixels outside the
    frame are filled by edge replication.
    """
    m = align_matrix(face, size=size, margin=margin, rotate=rotate)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
