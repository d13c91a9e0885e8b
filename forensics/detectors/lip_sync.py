"""Lip-sync mismatch: does the speaking mouth move with the audio?

For each face track, grey mouth crops are taken at ``fps`` (25) from landmarks interpolated
between face detections, and the audio becomes a log-mel spectrogram on the same clock. A unit
is one window (``window_frames`` frames, hop ``hop_frames``) of one track, and packs the mouth
clip plus the log-mel of the window widened by ``max_offset_frames`` on each side into one
float32 row (sizes in the card's architecture args; :class:`forensics.nn.lip_sync.LipSyncNet`
splits it; a ``LipSyncEnsemble`` averages several networks' curves). The sync curve (similarity per
audio shift) gives the logit by the card's ``logit_rule`` (higher = out of sync), the estimated offset
(its argmax; positive = the audio lags the video) and the confidence (max minus median); windows over
the card's window threshold (``calibration.window_threshold``, chosen at a stated share of aligned
windows; the file threshold on older cards) are merged into ``desync_spans`` per track.

A 1 s window alone is noisy, so each is read in the context of its track, as the card's ``smoothing``
says. ``offset_hmm``: a hidden Markov chain over the audio offset, which stays from window to window
or jumps (a splice, a dub), gives each window the posterior over offsets given all windows of the
track (:func:`offset_posterior`); the logit is how much more probable an offset beyond 0.08 s is than
one within it, the offset is the most probable one. Cards with ``offset_reference: "track"`` measure
that offset from the track's own steady offset (:func:`track_reference`) instead of zero: a recording
shifted as a whole by an encoder or a re-upload is evidence (``offset_pattern``: ``constant offset``),
not a desync; a splice or a dub away from it is. Older cards average the curves (``curves``) or the
logits (``logits``) of ``smooth_windows`` neighbouring windows (spans blur by about a second).

A training-free cue rides along in the evidence: the correlation between mouth opening
(darkness of the lip gap in the crop) and the speech envelope, at zero lag and at its best lag.
Windows without speech (energy voice-activity test) are not scored; files without audio, a
face, speech or a large enough mouth are skipped with that reason. Every number used here comes
from the card's ``preprocessing`` block; training (``scripts/train_lip_sync.py``) calls the same
functions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from forensics.detectors.base import Detector, DetectorSpec, Unit, calibrate
from forensics.detectors.windows import window_starts
from forensics.errors import DetectorError, MediaError, SkipDetection

# -- preprocessing shared by scanning and training -----------------------------------------

MIN_TRACK_WINDOWS = 3  # fewer windows on a track cannot say whether its offset is steady


def mouth_crop(image: np.ndarray, landmarks: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """A level grey ``mouth_height`` x ``mouth_width`` uint8 crop around the mouth.

    Scale comes from the eye-midpoint to mouth-midpoint distance ``d`` (robust to yaw): the crop
    is ``mouth_scale * d`` wide, centred ``mouth_shift * d`` below the mouth corners' midpoint.
    """
    h, w = int(prep["mouth_height"]), int(prep["mouth_width"])
    lm = np.asarray(landmarks, dtype=np.float64)
    eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    d = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    angle = float(np.degrees(np.arctan2(lm[1, 1] - lm[0, 1], lm[1, 0] - lm[0, 0])))
    down = np.array([-np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    cx, cy = mouth + float(prep["mouth_shift"]) * d * down
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, w / (float(prep["mouth_scale"]) * d))
    m[0, 2] += w / 2 - cx
    m[1, 2] += h / 2 - cy
    crop = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop


@dataclass
class MouthTrack:
    """Mouth crops of one face track on the ``fps`` clock: frame ``first + i`` is ``crops[i]``."""

    track: int
    first: int
    crops: np.ndarray  # N x H x W uint8
    boxes: np.ndarray  # N x 4 face boxes (pixels)
    mouth_px: np.ndarray  # N: eye-mouth distance in pixels (face scale)


def _interp(ts: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    j = int(np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)) if len(ts) > 1 else 0
    if len(ts) == 1:
        return values[0]
    a = float(np.clip((t - ts[j - 1]) / max(ts[j] - ts[j - 1], 1e-6), 0.0, 1.0))
    return (1 - a) * values[j - 1] + a * values[j]


def _crop_frame(fr: Any, tracks: list, reach: float, fps: float, per: dict[tuple, dict], arrays: dict) -> None:
    """Mouth crops of every track that covers luma frame ``fr`` (landmarks interpolated between detections), one
    per crop geometry: ``per`` maps each :func:`crop_geometry` to its ``{track: {frame: (crop, box, d)}}``.

    ``arrays`` caches each track's times, landmarks and boxes as arrays (rebuilt when it grows).
    """
    i = round(fr.t * fps)
    for tr in tracks:
        if not tr.faces[0].t - reach <= fr.t <= tr.faces[-1].t + reach:
            continue
        if tr.id not in arrays or len(arrays[tr.id][0]) != len(tr.faces):
            arrays[tr.id] = (
                np.array([f.t for f in tr.faces]),
                np.stack([np.asarray(f.landmarks, np.float64) for f in tr.faces]),
                np.array([f.box for f in tr.faces], np.float64),
            )
        ts, lms, boxes = arrays[tr.id]
        lm, box = _interp(ts, lms, fr.t), _interp(ts, boxes, fr.t)
        d = float(np.linalg.norm((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2))
        for geometry, got in per.items():
            got.setdefault(tr.id, {})[i] = (
                mouth_crop(fr.image, lm, dict(zip(GEOMETRY, geometry, strict=True))),
                box,
                d,
            )


GEOMETRY = ("mouth_height", "mouth_width", "mouth_scale", "mouth_shift")  # the preprocessing keys of a crop


def crop_geometry(prep: dict[str, Any]) -> tuple:
    """The crop geometry of ``prep`` (:data:`GEOMETRY`'s values): detectors asking for equal ones share crops."""
    return tuple(float(prep[k]) for k in GEOMETRY)


def _pass_key(prep: dict[str, Any], face_detector: Any) -> tuple:
    """What one crop pass depends on besides the geometry: the clock, the face sampling and detector, the span."""
    det = face_detector.cache_key() if face_detector is not None else None
    return (float(prep["fps"]), float(prep["face_fps"]), float(prep["max_seconds"]), det)


def want_mouth_crops(media: Any, prep: dict[str, Any], face_detector: Any) -> None:
    """Announce, before any detector decodes ``media``, that crops of ``prep``'s geometry will be read: the first
    :func:`mouth_tracks` pass with the same clock, face sampling, face detector and span crops them too (one
    decode serves ``lip_sync`` and ``mouth_render``)."""
    media.memo(("mouth_crops_wanted", _pass_key(prep, face_detector)), set).add(crop_geometry(prep))


def mouth_tracks(media: Any, prep: dict[str, Any], face_detector: Any = None) -> list[MouthTrack]:
    """Mouth crops per face track at ``prep['fps']``, landmarks interpolated between detections.

    Faces are detected at ``face_fps``; luma frames are streamed at ``fps`` for at most the first
    ``max_seconds`` (bounded time and memory: only the small crops are kept; the evidence states
    the analysed span). When no other detector has tracked the faces yet and the video fits in one
    face sampling, faces and mouths come from one decode (``media.faces_while_streaming``), which
    leaves the faces and sampled frames memoised for the other detectors. The pass also crops every
    geometry announced with :func:`want_mouth_crops`; each geometry's tracks are memoised on the media.
    """
    fps, face_fps, until = float(prep["fps"]), float(prep["face_fps"]), float(prep["max_seconds"])
    pass_key = _pass_key(prep, face_detector)
    mine = ("mouth_tracks", pass_key, crop_geometry(prep))
    if (done := media.memo(mine)) is not None:
        return done
    n = int(min(np.floor((media.info.duration or 0.0) * fps) + 1, until * fps))
    reach = 1.0 / face_fps
    geometries = {crop_geometry(prep)} | media.memo(("mouth_crops_wanted", pass_key), set)
    per: dict[tuple, dict[int, dict[int, tuple[np.ndarray, np.ndarray, float]]]] = {g: {} for g in geometries}
    arrays: dict = {}
    stream = media.faces_while_streaming(
        fps=fps, max_frames=max(n, 1), face_fps=face_fps, detector=face_detector, until=until
    )
    if stream is not None:
        _crop_while_tracking(stream, fps, reach, n, per, arrays)
    else:
        faces = media.faces(fps=face_fps, detector=face_detector, until=until, max_frames=int(until * face_fps) + 1)
        tracks = [t for t in faces if t.faces[0].landmarks is not None]
        if tracks:
            for fr in media.iter_frames(fps=fps, max_frames=max(n, 1), gray=True, until=until):
                if round(fr.t * fps) < n:
                    _crop_frame(fr, tracks, reach, fps, per, arrays)
    for geometry, got in per.items():
        media.memo(("mouth_tracks", pass_key, geometry), lambda got=got: _assemble(got))
    return media.memo(mine)


def _assemble(per: dict[int, dict[int, tuple[np.ndarray, np.ndarray, float]]]) -> list[MouthTrack]:
    """One geometry's crops by track and frame -> :class:`MouthTrack` list (a dropped frame repeats the last)."""
    out = []
    for tid, got in sorted(per.items()):
        if not got:
            continue
        idx = sorted(got)
        first, last = idx[0], idx[-1]
        crops, bxs, ds = [], [], []
        prev = got[first]
        for i in range(first, last + 1):
            prev = got.get(i, prev)  # a dropped frame repeats the previous crop
            crops.append(prev[0])
            bxs.append(prev[1])
            ds.append(prev[2])
        out.append(MouthTrack(tid, first, np.stack(crops), np.array(bxs, np.float32), np.array(ds, np.float32)))
    return out


def _crop_while_tracking(stream: Any, fps: float, reach: float, n: int, per: dict[tuple, dict], arrays: dict) -> None:
    """Mouth crops from a one-decode stream of ``(luma frame, face tracker)``.

    A luma frame waits (at most ``max_gap`` face samples) until every track that could cover it is
    settled: no new track can start within ``reach`` of it and each live track has a detection at or
    after it, so its crops equal those of the two-pass path.
    """
    from collections import deque

    pending: deque = deque()

    def settle(tracker: Any, final: bool) -> None:
        live = tracker.live()
        while pending and (
            final or (tracker.last_t >= pending[0].t + reach and all(t.faces[-1].t >= pending[0].t for t in live))
        ):
            tracks = [t for t in tracker.tracks if t.faces[0].landmarks is not None]
            _crop_frame(pending.popleft(), tracks, reach, fps, per, arrays)

    tracker = None
    for luma, tracker in stream:
        if luma is not None and round(luma.t * fps) < n:
            pending.append(luma)
        settle(tracker, final=False)
    if tracker is not None:
        settle(tracker, final=True)


def track_order(units: list[Any]) -> list[list[int]]:
    """Indices of ``units`` per face track (tracks by id), each list in time order."""
    return [
        sorted((i for i, u in enumerate(units) if u.track == tid), key=lambda i: units[i].start)
        for tid in sorted({u.track for u in units})
    ]


def smooth_windows(units: list[Any], values: np.ndarray, k: int) -> np.ndarray:
    """Each window's value (logit or sync curve) averaged with its neighbours on the same track:
    ``k`` windows centred on it (fewer at a track's ends). ``k = 1`` leaves values unchanged."""
    values = np.asarray(values, np.float64)
    if k <= 1 or len(values) == 0:
        return values
    out = np.empty_like(values)
    h = k // 2
    for idx in track_order(units):
        vals = values[idx]
        out[idx] = [vals[max(0, j - h) : j + h + 1].mean(0) for j in range(len(idx))]
    return out


def offset_posterior(curves: np.ndarray, *, beta: float, switch: float) -> np.ndarray:
    """Posterior over audio offsets for each window of one track, given all of its windows (in time order).

    A hidden Markov chain over the offsets of the curves' columns: from one window to the next the offset
    stays, or with probability ``switch`` is redrawn uniformly (a splice, a dub, a drifting resample). A
    window's sync curve scores each offset with log-likelihood ``beta * similarity``. Forward-backward,
    normalised at every step; ``switch = 1`` makes windows independent. Returns ``N x K``, rows sum to 1.
    """
    if beta < 0 or not 0.0 <= switch <= 1.0:
        raise ValueError(f"offset_posterior needs beta >= 0 and 0 <= switch <= 1, not {beta}, {switch}")
    ll = beta * np.asarray(curves, np.float64)
    lik = np.exp(ll - ll.max(axis=1, keepdims=True))
    n, k = lik.shape
    fwd, bwd = np.empty_like(lik), np.ones_like(lik)
    prior = np.full(k, 1.0 / k)
    for t in range(n):
        a = lik[t] * prior
        fwd[t] = a / a.sum()
        prior = (1.0 - switch) * fwd[t] + switch / k
    for t in range(n - 2, -1, -1):
        b = lik[t + 1] * bwd[t + 1]
        b = (1.0 - switch) * b + switch * b.sum() / k
        bwd[t] = b / b.sum()
    post = fwd * bwd
    return post / post.sum(axis=1, keepdims=True)


def posterior_logits(post: np.ndarray, reference: int = 0) -> np.ndarray:
    """``log P(|offset - reference| > NEAR_FRAMES) - log P(|offset - reference| <= NEAR_FRAMES)`` per row of an
    ``N x K`` posterior (``reference`` in frames, 0 = the column in the middle)."""
    from forensics.nn.lip_sync import NEAR_FRAMES

    c = post.shape[1] // 2 + int(reference)
    near = post[:, max(0, c - NEAR_FRAMES) : c + NEAR_FRAMES + 1].sum(1)
    far = np.clip(1.0 - near, 1e-12, 1.0)
    return np.log(far) - np.log(np.clip(near, 1e-12, 1.0))


def offset_pattern(
    offsets: np.ndarray, near_s: float, agree: float = 0.8, confidence: float | None = None, min_confidence: float = 0.0
) -> dict[str, Any]:
    """How one face track's window offsets behave over the file. ``in sync``: at least ``agree`` of them
    within ``near_s`` of zero; ``constant offset``: that many within ``near_s`` of one non-zero offset (what
    encoders, broadcast chains and re-uploads leave: evidence, not a manipulation by itself); ``offset
    changes``: neither (a splice, a dub, a drift, or no stable sync); ``too short`` under
    :data:`MIN_TRACK_WINDOWS` windows.
    ``confidence`` (the track's mean sync confidence at its median offset), when given, must reach
    ``min_confidence`` for ``constant offset``: a dub can settle on one offset by chance, weakly."""
    off = np.asarray(offsets, np.float64)
    if len(off) < MIN_TRACK_WINDOWS:
        return {"pattern": "too short"}
    med, tol = float(np.median(off)), near_s + 1e-9
    share = float(np.mean(np.abs(off - med) <= tol))
    if np.mean(np.abs(off) <= tol) >= agree or (share >= agree and abs(med) <= tol):
        return {"pattern": "in sync"}
    if share >= agree and (confidence is None or confidence >= min_confidence):
        return {"pattern": "constant offset", "offset_s": round(med, 3), "windows_at_offset": round(share, 3)}
    return {"pattern": "offset changes", "windows_at_median_offset": round(share, 3)}


def track_reference(
    post: np.ndarray, curves: np.ndarray, fps: float, *, agree: float = 0.8, min_confidence: float = -np.inf
) -> tuple[int, dict[str, Any]]:
    """One track's reference offset in frames and its :func:`offset_pattern`, from its windows' offset
    posteriors and raw sync curves. The reference is the windows' median most-probable offset when the track
    is ``in sync`` or at a ``constant offset`` (mean confidence there, the curve at that offset minus the
    curve's median, at least ``min_confidence``), else 0. The pattern carries that ``confidence``."""
    from forensics.nn.lip_sync import NEAR_FRAMES

    m = post.shape[1] // 2
    best = post.argmax(1) - m
    ref = round(float(np.median(best)))
    conf = float(np.mean(curves[:, m + ref] - np.median(curves, axis=1)))
    pattern = offset_pattern(best / fps, NEAR_FRAMES / fps, agree, conf, min_confidence)
    steady = pattern["pattern"] in ("in sync", "constant offset")
    return (ref if steady else 0), pattern | {"confidence": round(conf, 4)}


def log_mel(wav: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """``n_mels`` x frames log-mel at ``mel_per_frame * fps`` frames per second (float32)."""
    import librosa

    sr, hop = int(prep["sample_rate"]), int(prep["sample_rate"] / (prep["fps"] * prep["mel_per_frame"]))
    mel = librosa.feature.melspectrogram(
        y=np.asarray(wav, np.float32), sr=sr, n_fft=int(prep["n_fft"]), hop_length=hop, n_mels=int(prep["n_mels"]),
        fmin=float(prep["fmin"]), fmax=float(prep["fmax"]), center=True,
    )  # fmt: skip
    return np.log(mel + float(prep["mel_floor"])).astype(np.float32)


def frame_energy_db(wav: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """RMS level (dBFS) of the audio under each video frame of the ``fps`` clock."""
    step = int(prep["sample_rate"] / prep["fps"])
    n = len(wav) // step
    if n == 0:
        return np.zeros(0, np.float32)
    frames = wav[: n * step].reshape(n, step)
    rms = np.empty(n)
    for i in range(0, n, 4096):  # in blocks: an hour as one float64 array would take 460 MB
        rms[i : i + 4096] = np.sqrt(np.mean(np.square(frames[i : i + 4096], dtype=np.float64), axis=1))
    return (20 * np.log10(rms + 1e-8)).astype(np.float32)


def voiced_frames(energy_db: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """Voice-activity per frame: louder than ``vad_floor_db`` and ``vad_margin_db`` above the file's noise floor."""
    if energy_db.size == 0:
        return np.zeros(0, bool)
    noise = float(np.percentile(energy_db, 10))
    return energy_db > max(float(prep["vad_floor_db"]), noise + float(prep["vad_margin_db"]))


def pack_unit(crops: np.ndarray, mel: np.ndarray, speech: np.ndarray, first: int, prep: dict[str, Any]) -> np.ndarray:
    """One network row: the standardised mouth clip, the standardised log-mel around it, its speech flags.

    ``crops`` are the window's ``window_frames`` mouth crops starting at clock frame ``first``;
    ``mel`` is the whole file's :func:`log_mel` and ``speech`` its :func:`voiced_frames`. The audio
    slice and its speech flags span the window widened by ``max_offset_frames`` on each side,
    padded with the mel floor (and no speech) beyond the file.
    """
    k, m, wf = int(prep["mel_per_frame"]), int(prep["max_offset_frames"]), int(prep["window_frames"])
    clip = crops.astype(np.float32)
    clip = (clip - clip.mean()) / (clip.std() + 1e-3)
    a0, a1 = (first - m) * k, (first + wf + m) * k
    seg = np.full((mel.shape[0], a1 - a0), np.log(float(prep["mel_floor"])), np.float32)
    lo, hi = max(a0, 0), min(a1, mel.shape[1])
    if hi > lo:
        seg[:, lo - a0 : hi - a0] = mel[:, lo:hi]
    seg = (seg - seg.mean()) / (seg.std() + 1e-3)
    act = np.zeros(wf + 2 * m, np.float32)
    lo, hi = max(first - m, 0), min(first + wf + m, len(speech))
    if hi > lo:
        act[lo - first + m : hi - first + m] = speech[lo:hi]
    return np.concatenate([clip.ravel(), seg.ravel(), act]).astype(np.float32)


def mouth_opening(crops: np.ndarray) -> np.ndarray:
    """Training-free mouth opening per crop: darkness of the central band (the lip gap)."""
    h, w = crops.shape[1:]
    band = crops[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].astype(np.float32)
    return -band.mean(axis=(1, 2))


def lagged_correlation(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """Pearson correlation of ``x[t]`` with ``y[t + lag]`` for lag in ``[-max_lag, max_lag]``.

    ``y`` is ``2 * max_lag`` longer than ``x`` (``max_lag`` extra on each side).
    """
    n = len(x)
    xs = (x - x.mean()) / (x.std() + 1e-6)
    out = []
    for lag in range(-max_lag, max_lag + 1):
        seg = y[max_lag + lag : max_lag + lag + n]
        out.append(float(np.mean(xs * (seg - seg.mean()) / (seg.std() + 1e-6))))
    return np.array(out, np.float32)


# -- the detector ----------------------------------------------------------------------------


class MouthPassDetector(Detector):
    """A detector that reads the shared mouth pass (:func:`mouth_tracks`): ``lip_sync`` and ``mouth_render``.
    Holds the card's MTCNN (``face_max_side`` / ``min_face``), created once and warmed with the weights."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._face_detector: Any = None

    def face_detector(self) -> Any:
        """The MTCNN face detector at the card's ``face_max_side`` / ``min_face`` (created once)."""
        if self._face_detector is None:
            from forensics.media.faces import MTCNNDetector

            p = self.preprocessing
            self._face_detector = MTCNNDetector(max_side=int(p["face_max_side"]), min_face=int(p["min_face"]))
        return self._face_detector

    def warm_up(self) -> Detector:
        super().warm_up()
        self.face_detector().warm_up()
        return self


class LipSyncDetector(MouthPassDetector):
    """Audio-visual sync per face track and 1 s window; higher = mouth and speech disagree."""

    spec = DetectorSpec(
        name="lip_sync",
        kinds=("video",),
        unit="av_window",
        default_weights="sync_v10",
        aggregation="mean",
        description="two-stream mouth/log-mel sync network: per-window sync confidence and audio-video offset",
    )

    def build(self, weights: Any) -> Any:
        import torch

        from forensics.nn.lip_sync import build_lip_sync

        try:
            model = build_lip_sync(weights.card["architecture"])
        except (ValueError, TypeError) as exc:
            raise DetectorError(f"lip_sync cannot build these weights: {exc}") from exc
        model.load_state_dict({k: v.to(torch.float32) for k, v in weights.tensors.items()})
        return model

    leads_decoding = True  # one decode gives faces and mouths; face_swap and gan_fingerprint reuse it
    keeps_inputs = False  # the evidence reads the sync curves kept by score_batch, not the inputs

    def warm_up(self) -> Detector:
        super().warm_up()
        log_mel(
            np.zeros(int(self.preprocessing["sample_rate"]), np.float32), self.preprocessing
        )  # librosa loads lazily
        return self

    def units(self, media: Any) -> list[Unit]:
        prep = self.preprocessing
        if not media.info.has_audio:
            raise SkipDetection("no audio track")
        try:
            wav = media.audio(int(prep["sample_rate"]))
        except MediaError as exc:
            raise SkipDetection(f"audio track cannot be decoded: {exc}") from exc
        energy = frame_energy_db(wav, prep)
        speech = voiced_frames(energy, prep)
        if not speech.any():
            raise SkipDetection("no speech in the audio track (voice-activity test)")
        tracks = mouth_tracks(media, prep, self.face_detector())
        if not tracks:
            raise SkipDetection("no face found")
        big = [t for t in tracks if np.median(t.mouth_px) >= float(prep["min_mouth_px"])]
        if not big:
            raise SkipDetection(f"face too small for lip reading (eye-mouth distance < {prep['min_mouth_px']} px)")
        last = (
            max(t.first + len(t.crops) for t in big) + int(prep["window_frames"]) + 2 * int(prep["max_offset_frames"])
        )
        mel = log_mel(wav[: int((last + 1) / float(prep["fps"]) * int(prep["sample_rate"])) + int(prep["n_fft"])], prep)
        fps, wf, m = float(prep["fps"]), int(prep["window_frames"]), int(prep["max_offset_frames"])
        env = np.pad(energy, (m, wf + m), constant_values=float(energy.min()))
        units: list[Unit] = []
        for tr in big:
            opening = mouth_opening(tr.crops)
            for s in window_starts(len(tr.crops), int(prep["window_frames"]), int(prep["hop_frames"])):
                f0 = tr.first + s
                active = speech[f0 : f0 + wf]
                if active.size == 0 or active.mean() < float(prep["vad_min_fraction"]):
                    continue
                corr = lagged_correlation(opening[s : s + wf], env[f0 : f0 + wf + 2 * m], m)
                x0, y0, x1, y1 = (float(v) for v in tr.boxes[s : s + wf].mean(0))
                units.append(
                    Unit(
                        x=pack_unit(tr.crops[s : s + wf], mel, speech, f0, prep), start=f0 / fps, end=(f0 + wf) / fps,
                        frame=f0, box=(x0, y0, x1, y1), track=tr.track,
                        extra={"corr_zero": float(corr[m]), "corr_best_lag": int(np.argmax(corr)) - m},
                    )
                )  # fmt: skip
        if not units:
            raise SkipDetection(f"no window of {wf / fps:.1f} s with both a visible mouth and speech")
        most = max(Counter(u.track for u in units).values())
        if self.reads_against_track and most < MIN_TRACK_WINDOWS:
            raise SkipDetection(
                f"at most {most} window(s) of speech with a visible mouth on one face track: too few to tell a"
                f" steady audio offset (a re-encode) from a sync break (needs {MIN_TRACK_WINDOWS})"
            )
        return units

    def sync_curves(self, xs: np.ndarray) -> np.ndarray:
        """Similarity per audio shift (``-max_offset..max_offset`` frames) for packed unit rows."""
        model = self.model
        return self.batched(
            lambda b: model.sync_curve(b.float()), xs, np.zeros((0, 2 * model.max_offset + 1), np.float32)
        )

    def score_batch(self, batch: list[Unit]) -> np.ndarray:
        """Logits from the windows' sync curves, which stay on the units (``extra["curve"]``) for the evidence."""
        import torch

        curves = self.sync_curves(np.stack([u.x for u in batch]))
        for u, curve in zip(batch, curves, strict=True):
            u.extra["curve"] = curve
        with torch.inference_mode():
            return self.model.logit_from_curve(torch.from_numpy(curves)).float().numpy()

    def context_logits(self, units: list[Unit], logits: np.ndarray) -> np.ndarray:
        """Each window's logit in the context of its track; the card's ``smoothing`` says how.

        Every window keeps its ``smooth_windows``-averaged sync curve (``extra["context_curve"]``, the
        evidence's confidence). ``"offset_hmm"``: the logit is log P(offset beyond ``NEAR_FRAMES``) minus
        log P(within it) under :func:`offset_posterior` over all the track's windows (card ``hmm_beta``,
        ``hmm_switch``), and the posterior stays on the unit (``extra["posterior"]``: the evidence's
        offsets). With ``offset_reference: "track"`` the offset is measured from the track's own steady
        offset instead of zero (:func:`track_reference`: in sync, or one constant offset held by most
        windows with enough confidence): a whole recording shifted by an encoder or a re-upload is not
        out of sync, a splice or dub away from that offset is; the logit against zero stays on the unit
        (``extra["zero_offset_logit"]``). ``"curves"``: the logit is read from the averaged curve.
        ``"logits"`` (older cards): the windows' own logits are averaged.
        """
        import torch

        prep = self.preprocessing
        raw = np.stack([u.extra["curve"] for u in units])
        curves = smooth_windows(units, raw, int(prep.get("smooth_windows", 1))).astype(np.float32)
        for u, c in zip(units, curves, strict=True):
            u.extra["context_curve"] = c
        smoothing = prep.get("smoothing", "logits")
        if smoothing == "offset_hmm":
            post = np.empty(raw.shape, np.float64)
            for idx in track_order(units):
                post[idx] = offset_posterior(raw[idx], beta=float(prep["hmm_beta"]), switch=float(prep["hmm_switch"]))
            logits = posterior_logits(post)
            for u, q, z in zip(units, post, logits, strict=True):
                u.extra["posterior"], u.extra["zero_offset_logit"] = q, z
            for idx in track_order(units):  # each track's steady offset, read once (the evidence reports it)
                ref, pattern = track_reference(post[idx], raw[idx], float(prep["fps"]), **self._steady())
                units[idx[0]].extra["track_reference"] = (ref, pattern)
                if self.reads_against_track:
                    logits[idx] = posterior_logits(post[idx], ref)
            return logits.astype(np.float32)
        if smoothing != "curves":
            return smooth_windows(units, logits, int(prep.get("smooth_windows", 1))).astype(np.float32)
        with torch.inference_mode():
            return self.model.logit_from_curve(torch.from_numpy(curves)).float().numpy()

    @property
    def reads_against_track(self) -> bool:
        """Whether the card measures offsets from each track's steady offset (``offset_reference: "track"``)."""
        return self.preprocessing.get("offset_reference", "zero") == "track"

    def _steady(self) -> dict[str, float]:
        """:func:`track_reference`'s thresholds from the card (older cards: any confidence)."""
        prep = self.preprocessing
        share, confidence = prep.get("steady_share", 0.8), prep.get("steady_confidence", -np.inf)
        return {"agree": float(share), "min_confidence": float(confidence)}

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        from forensics.nn.lip_sync import NEAR_FRAMES

        fps = float(self.preprocessing["fps"])
        curves = np.stack([u.extra["context_curve"] for u in units])
        m = curves.shape[1] // 2
        post = np.stack([u.extra["posterior"] for u in units]) if "posterior" in units[0].extra else None
        best = (post if post is not None else curves).argmax(1)
        offsets = (best - m) / fps
        conf = curves.max(1) - np.median(curves, axis=1)
        windows = [
            {
                "start": round(u.start, 3), "end": round(u.end, 3), "track": u.track,
                "offset_s": round(float(o), 3), "confidence": round(float(c), 4),
                "mouth_audio_corr": round(u.extra["corr_zero"], 3),
                "mouth_audio_best_lag_s": round(u.extra["corr_best_lag"] / fps, 3),
            }
            for u, o, c in zip(units, offsets, conf, strict=True)
        ]  # fmt: skip
        if post is not None:  # how sure each offset is: posterior mass within NEAR_FRAMES of it
            for w, q, b in zip(windows, post, best, strict=True):
                w["offset_probability"] = round(float(q[max(0, b - NEAR_FRAMES) : b + NEAR_FRAMES + 1].sum()), 4)
        by_track = self.reads_against_track
        if by_track:  # the window read against zero offset, beside its score against the track's reference
            zero = calibrate(np.array([u.extra["zero_offset_logit"] for u in units]), self.calibration)
            for w, z in zip(windows, zero, strict=True):
                w["zero_offset_score"] = round(float(z), 4)
        tracks = []
        for idx in track_order(units):
            sel = np.zeros(len(units), bool)
            sel[idx] = True
            corr = np.array([units[i].extra["corr_zero"] for i in idx])
            track = {
                "track": units[idx[0]].track, "windows": len(idx), "offset_s": round(float(np.median(offsets[sel])), 3),
                "confidence": round(float(np.mean(conf[sel])), 4),
                "track_curve_offset_s": round(float(curves[sel].mean(0).argmax() - m) / fps, 3),
                "mouth_audio_corr": round(float(corr.mean()), 3),
            }  # fmt: skip
            if post is None:
                track["offset_pattern"] = offset_pattern(offsets[sel], NEAR_FRAMES / fps)
            else:
                ref, track["offset_pattern"] = units[idx[0]].extra["track_reference"]
                if by_track:
                    track["reference_offset_s"] = round(ref / fps, 3)
            tracks.append(track)
        window_threshold = float(self.calibration.get("window_threshold", self.threshold))
        flagged = calibrate(logits, self.calibration) >= window_threshold
        spans: list[list[float]] = []
        for u, f in sorted(zip(units, flagged, strict=True), key=lambda p: (p[0].track, p[0].start)):
            if not f:
                continue
            if spans and spans[-1][2] == u.track and u.start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], u.end)
            else:
                spans.append([u.start, u.end, u.track])
        duration = media.info.duration or 0.0
        return {
            "signal": "sync break",
            "offset_sign": "positive = audio lags video",
            "analysed_s": [0.0, round(min(duration, float(self.preprocessing["max_seconds"])), 3)],
            "tracks": tracks,
            "offset_pattern": max(tracks, key=lambda t: t["windows"])["offset_pattern"],  # of the main track
            "windows": windows,
            "window_threshold": round(window_threshold, 4),
            "desync_spans": [{"start": round(a, 3), "end": round(b, 3), "track": t} for a, b, t in spans],
        }
