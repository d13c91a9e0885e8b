"""lip_sync measured through the full detector (decode, faces, mouth crops, audio, network, calibration) on
real clips whose audio is shifted, dubbed, spliced, drifting or replaced in bursts: the tests of
``scripts/eval_lip_sync.py`` and the numbers of the card's ``metrics.full_pipeline``.

Each clip is opened once (frames and faces memoised) and scored with audio swapped in
(:meth:`forensics.media.Media.replace_audio`). A clip that does not score is reported through ``log``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.media import Media, open_media
from forensics.train.lip_sync_data import SHIFTS, shift_wav
from forensics.train.metrics import summarize

Log = Callable[[str], None]
# real talking heads whose videos lip_sync never trained on nor was calibrated with (HyperLips' two inputs are in
# the card's HyperLips tests, which choose nothing): interviews, an address, a radio studio, a film scene
INDEPENDENT_REPOS = (
    "YuvalNirkin/fsgan", "tencent-ailab/V-Express", "wujinzhong/Wav2Lip_TensorRT", "cyshih704/Deepfake-Detection",
    "semchan/HyperLips",
)  # fmt: skip


def card_clip_paths(card: dict[str, Any], data: Path) -> list[Path]:
    """The real clips a lip_sync card lists as held out (``training_data.validation``), in ``data/real_video``."""
    names = [n.removeprefix("real__") for n in card["training_data"]["validation"]]
    return [next((data / "real_video").glob(f"{name}.*")) for name in names]


def independent_clip_paths(data: Path) -> list[Path]:
    """The real videos of :data:`INDEPENDENT_REPOS` in the manifest of ``data``."""
    from forensics.train.manifest import read_manifest

    rows = read_manifest(data)
    return [data / r.file for r in rows if r.label == "real" and r.kind == "video" and r.repo in INDEPENDENT_REPOS]


@dataclass
class Clip:
    """One video, opened once for every test (frames and faces memoised), and its own audio."""

    media: Media
    wav: np.ndarray

    @classmethod
    def open(cls, path: Path, sr: int) -> Clip:
        media = open_media(path)
        return cls(media, media.audio(sr))

    @classmethod
    def open_with_audio(cls, paths: list[Path], sr: int, log: Log) -> list[Clip]:
        """The clips of ``paths`` that have an audio track, each opened once; the others reported."""
        clips = []
        for path in paths:
            media = open_media(path)
            if media.info.has_audio:
                clips.append(cls(media, media.audio(sr)))
            else:
                log(f"{path.name}: no audio track, left out")
        return clips

    @property
    def name(self) -> str:
        return self.media.path.name


def _window_threshold(det: Any) -> float:
    """The card's window threshold (older cards: the file threshold)."""
    return float(det.calibration.get("window_threshold", det.threshold))


def zero_offset_scores(res: Any) -> list[float]:
    """Each window's score against zero offset: the shift test's measure. Cards that read windows against
    their track's steady offset keep it in the evidence (``zero_offset_score``); on others it is the
    segment score."""
    return [w.get("zero_offset_score", seg.score) for seg, w in zip(res.segments, res.evidence["windows"], strict=True)]


def detect_with(det: Any, clip: Clip, wav: np.ndarray, what: str, log: Log) -> Any:
    """``det.detect`` on the clip's frames with ``wav`` as its audio; ``None`` (reported) unless it scored."""
    clip.media.replace_audio(wav, int(det.preprocessing["sample_rate"]))
    res = det.detect(clip.media)
    if res.status != "ok":
        log(f"  {clip.name} {what}: {res.status} ({res.reason})")
        return None
    return res


def shift_test(det: Any, clips: list[Clip], log: Log) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every clip with its own audio and with the audio shifted by each of ``SHIFTS``, through ``det.detect``.

    Per speech window: is a shift detected (|offset| > 0.08 s), the offset error (against the shift, and
    against the shift plus the recording's own offset: its median with its own audio; reported as the
    median and the share <= 0.08 s), is the window flagged (its score against zero offset >= the card's
    window threshold, else its file threshold); and the window score that flags 5 % of these clips' own
    aligned windows, and the share of shifted windows above it. Per file: flagged at the card's threshold
    (shifted as a whole and aligned) and, when shifted, described as a ``constant offset``.
    Also returns, per clip, the result with its own audio (``None`` unless it scored), the compute per
    second of video of that pass (the first on a fresh clip decodes its frames) and the recording's own
    offset (median window offset with its own audio): ``{name: (result, seconds, offset or None)}``.
    """
    sr = int(det.preprocessing["sample_rate"])
    wthr = _window_threshold(det)
    win: dict[str, list] = {
        "det": [], "err": [], "err_own": [], "flag_shift": [], "flag0": [], "off0": [], "s_shift": [], "s0": []
    }  # fmt: skip
    files: dict[str, list] = {"score": [], "label": []}
    own_audio: dict[str, Any] = {}
    for clip in clips:
        own = None  # the recording's own offset, from the first pass (own audio)
        for shift in (0.0, *SHIFTS):
            t0 = time.perf_counter()
            res = detect_with(det, clip, shift_wav(clip.wav, shift, sr), f"shift {shift:+.1f}", log)
            offs = np.array([w["offset_s"] for w in res.evidence["windows"]]) if res else None
            if shift == 0:
                took = (time.perf_counter() - t0) / (clip.media.info.duration or 1.0)
                own = float(np.median(offs)) if res else None
                own_audio[clip.name] = (res, took, own)
            if res is None:
                continue
            wscores = zero_offset_scores(res)
            flags = np.array([s >= wthr for s in wscores])
            if shift == 0:
                win["s0"] += wscores
                win["flag0"] += list(flags)
                win["off0"] += list(np.abs(offs))
            else:
                win["det"] += list(np.abs(offs) > 0.08)
                win["err"] += list(np.abs(offs - shift))
                if own is not None:
                    win["err_own"] += list(np.abs(offs - shift - own))
                win["flag_shift"] += list(flags)
                win["s_shift"] += wscores
            files["score"].append(res.score)
            files["label"].append(int(shift != 0))
            files.setdefault("pattern", []).append(res.evidence["offset_pattern"]["pattern"])
        log(f"  {clip.name}: done")
    shifted_files = np.array(files["label"]) == 1
    thr5 = float(np.quantile(win["s0"], 0.95))
    summary = {
        "clips": len(clips),
        "windows_shifted": len(win["det"]),
        "windows_aligned": len(win["flag0"]),
        "shift_detected_rate": float(np.mean(win["det"])),
        "offset_error_le_0.08s_rate": float(np.mean(np.array(win["err"]) <= 0.08 + 1e-9)),
        "offset_median_abs_error_s": float(np.median(win["err"])),
        "offset_error_vs_shift_plus_own_offset_le_0.08s_rate": float(np.mean(np.array(win["err_own"]) <= 0.08 + 1e-9)),
        "offset_median_abs_error_vs_shift_plus_own_offset_s": float(np.median(win["err_own"])),
        "window_threshold": wthr,
        "shifted_windows_flagged_rate": float(np.mean(win["flag_shift"])),
        "aligned_windows_flagged_rate": float(np.mean(win["flag0"])),
        "aligned_windows_offset_gt_0.08s_rate": float(np.mean(np.array(win["off0"]) > 0.08)),
        "files_shifted_vs_aligned": summarize(np.array(files["label"]), np.array(files["score"])),
        "shifted_files_flagged_rate": float(np.mean(np.array(files["score"])[shifted_files] >= det.threshold)),
        "aligned_files_flagged_rate": float(np.mean(np.array(files["score"])[~shifted_files] >= det.threshold)),
        "shifted_files_constant_offset_rate": float(
            np.mean(np.array(files["pattern"])[shifted_files] == "constant offset")
        ),
        "window_threshold_at_5%_aligned_flagged": thr5,
        "shifted_windows_flagged_at_that_threshold": float(np.mean(np.array(win["s_shift"]) > thr5)),
    }
    return summary, own_audio


def dub_test(det: Any, clips: list[Clip], log: Log, own_audio: dict[str, Any]) -> dict[str, Any]:
    """Dubbing: each clip with the next clip's speech (another speaker; repeated to length) instead of its own.

    Windows flagged at the card's window threshold (dubbed, and own audio for comparison) and file scores
    of dubbed vs own audio; the own-audio results are the shift test's (``own_audio``), not scored again.
    """
    wthr = _window_threshold(det)
    flags: dict[int, list] = {0: [], 1: []}
    files: dict[str, list] = {"score": [], "label": []}
    for i, clip in enumerate(clips):
        dubbed = np.resize(clips[(i + 1) % len(clips)].wav, len(clip.wav))  # repeated or cut to this length
        for label, res in ((0, own_audio[clip.name][0]), (1, detect_with(det, clip, dubbed, "dubbed", log))):
            if res is None:
                continue
            flags[label] += [seg.score >= wthr for seg in res.segments]
            files["score"].append(res.score)
            files["label"].append(label)
    return {
        "clips": len(clips),
        "windows_dubbed": len(flags[1]),
        "dubbed_windows_flagged_rate": float(np.mean(flags[1])),
        "own_audio_windows_flagged_rate": float(np.mean(flags[0])),
        "files_dubbed_vs_own": summarize(np.array(files["label"]), np.array(files["score"])),
    }


def splice_test(det: Any, clips: list[Clip], log: Log, shift: float = 0.4) -> dict[str, Any]:
    """Localisation: each clip's audio delayed by ``shift`` s from its midpoint on (a re-dubbed second half).

    Windows wholly more than 1 s before / after the splice flagged at the card's window threshold, and
    how far the first desync span reaching past the splice starts from it (seconds, negative = early).
    """
    sr = int(det.preprocessing["sample_rate"])
    wthr = _window_threshold(det)
    flags: dict[str, list] = {"before": [], "after": []}
    onsets = []
    for clip in clips:
        half = len(clip.wav) // 2
        spliced = np.concatenate([clip.wav[:half], shift_wav(clip.wav, shift, sr)[half:]])
        res = detect_with(det, clip, spliced, "spliced", log)
        if res is None:
            continue
        t = half / sr
        flags["before"] += [seg.score >= wthr for seg in res.segments if seg.end <= t - 1.0]
        flags["after"] += [seg.score >= wthr for seg in res.segments if seg.start >= t + 1.0]
        late = [sp["start"] for sp in res.evidence["desync_spans"] if sp["end"] > t]
        if late:
            onsets.append(min(late) - t)
    return {
        "clips": len(clips),
        "shift_s": shift,
        "windows_before": len(flags["before"]),
        "windows_after": len(flags["after"]),
        "before_flagged_rate": float(np.mean(flags["before"])),
        "after_flagged_rate": float(np.mean(flags["after"])),
        "clips_with_a_span_after": len(onsets),
        "span_onset_minus_splice_s": [round(o, 2) for o in onsets],
        "median_abs_onset_error_s": float(np.median(np.abs(onsets))) if onsets else None,
    }


def drift_test(det: Any, clips: list[Clip], log: Log, own: dict[str, Any], rate: float = 0.05) -> dict[str, Any]:
    """Drift: the audio falls behind the video by ``rate`` s per second (a wrong resampling), reaching 0.5 s
    after 10 s. Windows whose delay at their centre is >= 0.2 s / <= 0.08 s flagged at the card's window
    threshold, and offsets within 0.08 s of the delay plus the recording's own offset (``own``, from the
    shift test's own-audio pass; clips without one are left out of that measure)."""
    flags: dict[str, list] = {"behind": [], "near": []}
    err = []
    wthr = _window_threshold(det)
    for clip in clips:
        n = len(clip.wav)
        drifted = np.interp(np.arange(n) * (1.0 - rate), np.arange(n), clip.wav).astype(np.float32)
        res = detect_with(det, clip, drifted, f"drift {rate} s/s", log)
        if res is None:
            continue
        for seg, w in zip(res.segments, res.evidence["windows"], strict=True):
            delay = rate * (seg.start + seg.end) / 2
            if delay >= 0.2:
                flags["behind"].append(seg.score >= wthr)
            elif delay <= 0.08:
                flags["near"].append(seg.score >= wthr)
            if own.get(clip.name) is not None:
                err.append(abs(w["offset_s"] - delay - own[clip.name]) <= 0.08 + 1e-9)
    return {
        "clips": len(clips),
        "rate_s_per_s": rate,
        "windows_behind_ge_0.2s": len(flags["behind"]),
        "behind_flagged_rate": float(np.mean(flags["behind"])),
        "windows_behind_le_0.08s": len(flags["near"]),
        "near_flagged_rate": float(np.mean(flags["near"])),
        "offset_within_0.08s_of_delay_plus_own_rate": float(np.mean(err)),
    }


def burst_test(det: Any, clips: list[Clip], log: Log, seconds: tuple[float, ...] = (2.0, 4.0)) -> dict[str, Any]:
    """Short bursts: ``seconds`` of audio around each clip's midpoint delayed 0.4 s, or replaced by the previous
    clip's speech (another speaker). Windows wholly inside the burst flagged at the card's window threshold, and
    windows more than 1 s away from it flagged (what reading a window in its track's context costs)."""
    sr, wthr = int(det.preprocessing["sample_rate"]), _window_threshold(det)
    out: dict[str, Any] = {"clips": len(clips)}
    for length in seconds:
        for kind in ("shifted", "dubbed"):
            inside, away = [], []
            for i, clip in enumerate(clips):
                n, half = len(clip.wav), int(length * sr / 2)
                a, b = max(n // 2 - half, 0), min(n // 2 + half, n)
                other = shift_wav(clip.wav, 0.4, sr) if kind == "shifted" else np.resize(clips[i - 1].wav, n)
                burst = clip.wav.copy()
                burst[a:b] = other[a:b]
                res = detect_with(det, clip, burst, f"{length:g} s {kind} burst", log)
                if res is None:
                    continue
                t0, t1 = a / sr, b / sr
                inside += [seg.score >= wthr for seg in res.segments if seg.start >= t0 and seg.end <= t1]
                away += [seg.score >= wthr for seg in res.segments if seg.end <= t0 - 1.0 or seg.start >= t1 + 1.0]
            out[f"{length:g}s_{kind}"] = {
                "windows_inside": len(inside),
                "inside_flagged_rate": float(np.mean(inside)) if inside else None,
                "windows_away": len(away),
                "away_flagged_rate": float(np.mean(away)) if away else None,
            }
    return out
