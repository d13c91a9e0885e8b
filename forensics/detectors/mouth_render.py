"""Re-rendered mouths: is the lower face of a talking head regenerated frame by frame and pasted back?

Lip-sync generators (Wav2Lip, HyperLips, DINet, LatentSync...) are in sync by construction, so a sync score
calls them genuine; what they cannot hide is that the mouth region is rendered at a low resolution, pasted
with a soft mask and re-generated independently in every frame (it flickers while the rest of the face does
not). For each face track, grey lower-face crops (nose to chin, level, scaled by the eye-mouth distance) are
taken at ``fps`` with :func:`forensics.detectors.lip_sync.mouth_tracks` (in a scan, the same decode and face
pass as ``lip_sync``: :meth:`MouthRenderDetector.plan` asks for them before it runs);
a unit is a clip of ``clip_frames`` consecutive crops every ``hop_frames``, standardised per clip
(:func:`clip_input`), and :class:`forensics.nn.mouth_render.MouthRenderNet` gives one logit per clip
(higher = re-rendered). The file score is the most suspicious track's mean (``track_max``); the evidence
lists each track's score and the spans of clips over the card's ``window_threshold``. Every number comes
from the card's ``preprocessing``; training (:mod:`forensics.train.mouth_render`) calls the same functions.
No audio is needed: silent and animated videos are scored too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forensics.detectors.base import DetectorSpec, Unit, calibrate
from forensics.detectors.lip_sync import MouthPassDetector, mouth_tracks, want_mouth_crops
from forensics.detectors.windows import merged_spans, window_starts
from forensics.errors import DetectorError, SkipDetection


def clip_input(crops: np.ndarray) -> np.ndarray:
    """``clip_frames`` x H x W uint8 crops -> float32 network input, standardised over the clip (mean 0, std 1)."""
    x = crops.astype(np.float32)
    return (x - x.mean()) / (x.std() + 1.0)


def clip_units(tracks: list[Any], prep: dict[str, Any]) -> list[Unit]:
    """One unit per clip of ``clip_frames`` consecutive crops, every ``hop_frames``, on tracks whose median
    eye-mouth distance is at least ``min_mouth_px`` (the network input, time span, face box and track)."""
    fps, k, hop = float(prep["fps"]), int(prep["clip_frames"]), int(prep["hop_frames"])
    units = []
    for tr in tracks:
        if np.median(tr.mouth_px) < float(prep["min_mouth_px"]):
            continue
        for s in window_starts(len(tr.crops), k, hop):
            f0 = tr.first + s
            x0, y0, x1, y1 = (float(v) for v in tr.boxes[s : s + k].mean(0))
            units.append(
                Unit(clip_input(tr.crops[s : s + k]), f0 / fps, (f0 + k) / fps, frame=f0, box=(x0, y0, x1, y1),
                     track=tr.track)
            )  # fmt: skip
    return units


class MouthRenderDetector(MouthPassDetector):
    """Scores short clips of the lower face per track; higher = the mouth region is re-rendered."""

    spec = DetectorSpec(
        name="mouth_render",
        kinds=("video",),
        unit="face",
        default_weights="render_v1",
        aggregation="track_max",
        description="lower-face clip CNN trained on self-made re-rendered mouths (lip-sync, talking-head fakes)",
    )

    def build(self, weights: Any) -> Any:
        from forensics.nn.mouth_render import MouthRenderNet

        arch = weights.card["architecture"]
        if arch.get("name") != "MouthRenderNet":
            raise DetectorError(f"mouth_render cannot build architecture {arch.get('name')!r}")
        model = MouthRenderNet(**arch.get("args", {}))
        model.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return model

    def plan(self, media: Any) -> None:
        """Ask for this card's crops from the first mouth pass over ``media`` (``lip_sync``'s, in a scan)."""
        want_mouth_crops(media, self.preprocessing, self.face_detector())

    def units(self, media: Any) -> list[Unit]:
        prep = self.preprocessing
        tracks = mouth_tracks(media, prep, self.face_detector())
        if not tracks:
            raise SkipDetection("no face found")
        units = clip_units(tracks, prep)
        if not units:
            raise SkipDetection(
                f"no face track with an eye-mouth distance of {prep['min_mouth_px']} px over "
                f"{int(prep['clip_frames'])} frames"
            )
        return units

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Per track: clips, mean and max calibrated score, and the spans of clips over ``window_threshold``."""
        probs = calibrate(logits, self.calibration)
        window_threshold = float(self.calibration.get("window_threshold", self.threshold))
        tracks = []
        for tid in sorted({u.track for u in units}):
            idx = sorted((i for i, u in enumerate(units) if u.track == tid), key=lambda i: units[i].start)
            p = probs[idx]
            spans = merged_spans([units[i] for i in idx], p >= window_threshold)
            tracks.append(
                {
                    "track": tid, "clips": len(idx), "mean_score": round(float(p.mean()), 4),
                    "max_score": round(float(p.max()), 4),
                    "rerendered_spans": [{"start": a, "end": b, "track": tid} for a, b in spans],
                }
            )  # fmt: skip
        tracks.sort(key=lambda t: -t["mean_score"])
        duration = media.info.duration or 0.0
        return {
            "signal": "re-rendered mouth",
            "analysed_s": [0.0, round(min(duration, float(self.preprocessing["max_seconds"])), 3)],
            "suspicious_track": tracks[0]["track"],
            "tracks": tracks,
            "window_threshold": round(window_threshold, 4),
            "rerendered_spans": [s for t in tracks for s in t["rerendered_spans"]],
        }
