"""The detector contract: a spec, the shared batching / calibration / aggregation plumbing.

A detector family subclasses :class:`Detector`, declares a :class:`DetectorSpec`, and
implements :meth:`Detector.build` (weights -> ``nn.Module``) and :meth:`Detector.units`
(media -> network inputs with their time spans). Everything else — loading verified weights,
batching on the chosen device, calibration, aggregation, status handling — lives here.
"""

from __future__ import annotations

import itertools
import math
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forensics._version import __version__
from forensics.errors import DetectorError, ForensicsError, SkipDetection, WeightsNotFoundError
from forensics.results import DetectionResult, Segment, parse_weights_id

UNITS = ("face", "frame", "audio_window", "av_window")
LISTENING_UNITS = ("audio_window", "av_window")  # units that read the sound track


@dataclass(frozen=True)
class FinetuneRecipe:
    """Defaults of ``forensics finetune`` for a detector's networks (each can be overridden)."""

    epochs: int = 5
    lr: float = 1e-4
    patience: int = 2  # epochs without a better validation score before stopping


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector consumes and how its unit scores become a file score. Numbers that depend on the
    weights (frame rates, window lengths, sample rates) are in the weights card's ``preprocessing`` only."""

    name: str
    kinds: tuple[str, ...]  # media kinds it scores: "image", "video", "audio"
    unit: str  # one of UNITS
    default_weights: str  # tag of the shipped weights
    aggregation: str = "mean"
    description: str = ""
    on_request: bool = False  # scored only when asked for by name (``--detectors``), not in a default scan
    finetune: FinetuneRecipe = FinetuneRecipe()

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}")


@dataclass
class Unit:
    """One network input with where it came from (seconds, frame index, face box, track id)."""

    x: np.ndarray
    start: float
    end: float
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None
    track: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_FREED = np.zeros(0, np.float32)  # what ``Unit.x`` holds once scored by a detector that does not keep inputs


# -- calibration and aggregation -----------------------------------------------------------


def calibrate(logits: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """``P(fake) = sigmoid((logit - bias) / temperature)`` with the card's numbers."""
    t = float(calibration.get("temperature", 1.0))
    b = float(calibration.get("bias", 0.0))
    z = (np.asarray(logits, dtype=np.float64) - b) / t
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def _mean(scores: np.ndarray, tracks: Sequence[int | None]) -> float:
    return float(np.mean(scores))


def _max(scores: np.ndarray, tracks: Sequence[int | None]) -> float:
    return float(np.max(scores))


def _median(scores: np.ndarray, tracks: Sequence[int | None]) -> float:
    return float(np.median(scores))


def _top_k_mean(scores: np.ndarray, tracks: Sequence[int | None], frac: float = 0.25) -> float:
    k = max(1, math.ceil(len(scores) * frac))
    return float(np.mean(np.sort(scores)[-k:]))


def _track_max(scores: np.ndarray, tracks: Sequence[int | None]) -> float:
    """Mean score per face track, then the most suspicious track: one swapped person suffices."""
    by: dict[Any, list[float]] = {}
    for s, t in zip(scores, tracks, strict=True):
        by.setdefault(t, []).append(float(s))
    return max(float(np.mean(v)) for v in by.values())


AGGREGATIONS: dict[str, Callable[[np.ndarray, Sequence[int | None]], float]] = {
    "mean": _mean,
    "max": _max,
    "median": _median,
    "top_k_mean": _top_k_mean,
    "track_max": _track_max,
}


def aggregate(name: str, scores: np.ndarray, tracks: Sequence[int | None]) -> float:
    """Apply a named aggregation to unit scores."""
    if name not in AGGREGATIONS:
        raise DetectorError(f"unknown aggregation {name!r}; choose from {', '.join(AGGREGATIONS)}")
    return AGGREGATIONS[name](np.asarray(scores, dtype=np.float64), tracks)


# -- the detector ------------------------------------------------------------------------


def library_version() -> str:
    """The version of this library, recorded with every result."""
    return __version__


class Detector(ABC):
    """Base class of every detector.

    The constructor only stores parameters (nothing is loaded until first use). Verbs:
    :meth:`decision_function` (raw logits per unit), :meth:`predict_proba` (calibrated
    per unit), :meth:`detect` (a full :class:`DetectionResult` that never raises for bad media).
    """

    spec: ClassVar[DetectorSpec]
    #: whether :meth:`evidence` reads ``Unit.x`` (if not, :meth:`detect` frees each input once scored)
    keeps_inputs: ClassVar[bool] = True
    #: run before the other detectors on a file: what it decodes in one pass is memoised for them
    leads_decoding: ClassVar[bool] = False

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        device: str = "cpu",
        aggregation: str | None = None,
        batch_size: int = 32,
    ) -> None:
        self.weights = str(weights) if weights is not None else f"{self.spec.name}.{self.spec.default_weights}"
        self.device = device
        self.aggregation = aggregation
        self.batch_size = batch_size
        self._loaded: Any = None
        self._model: Any = None
        self._entry: Any = None
        self._members: list[Detector] = []  # an ensemble's member detectors

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={self.weights!r}, device={self.device!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle parameters only: the receiving process loads and verifies the weights itself."""
        state = dict(self.__dict__)
        state["_loaded"] = state["_model"] = state["_entry"] = None
        state["_members"] = []
        return state

    # -- weights ---------------------------------------------------------------------
    @property
    def loaded_weights(self) -> Any:
        """The verified :class:`~forensics.weights.LoadedWeights` (loaded on first use)."""
        self.load()
        return self._loaded

    @property
    def card(self) -> dict[str, Any]:
        """The weights card: read from the registry entry, so asking costs no tensor loading."""
        return self._loaded.card if self._loaded is not None else self.weights_entry().card

    def weights_entry(self) -> Any:
        """The :class:`~forensics.weights.WeightsEntry` of ``weights`` (resolved once, tensors not read).

        Raises :class:`WeightsNotFoundError` when its file is missing and :class:`DetectorError` when the
        card names another detector, so a wrong name fails before any file is scanned.
        """
        if self._entry is None:
            from forensics.weights import resolve, sha256_file

            entry = resolve(self.weights)
            if entry.path is None or not entry.path.is_file():
                raise WeightsNotFoundError(f"weights file of {entry.name} not found: {entry.path}")
            det = entry.card.get("detector", parse_weights_id(entry.name)[0])
            if det != self.spec.name:
                raise DetectorError(f"weights {entry.name} are for detector {det!r}, not {self.spec.name!r}")
            entry.sha256 = entry.sha256 or sha256_file(entry.path)  # a bare path's card may record none
            self._entry = entry
        return self._entry

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    def load(self) -> Detector:
        """Load and verify weights and build the network on ``device``. Idempotent."""
        if self._model is None:
            from forensics.nn.zoo import build_network
            from forensics.weights import load_weights

            self.weights_entry()  # the weights are this detector's
            lw = load_weights(self.weights)

            arch = lw.card.get("architecture", {})
            if arch.get("name") == "ensemble":
                kw = {"device": self.device, "batch_size": self.batch_size}
                self._members = [type(self)(m, **kw).load() for m in arch["members"]]
            model = build_network(arch)  # a published foreign network, or an ensemble's combination?
            if model is None:
                model = self.build(lw)
            else:
                model.load_state_dict({k: v.float() for k, v in lw.tensors.items()}, strict=True)
            import torch

            # channels-last convolutions are 10-20 % faster on CPU (oneDNN); only 4-D weights change layout
            self._model = model.to(self.device, memory_format=torch.channels_last).eval()
            self._loaded = lw
        return self

    def warm_up(self) -> Detector:
        """Load the weights and build what the detector otherwise builds on first use (face detector,
        feature libraries), so that worker processes forked afterwards share it instead of each paying
        for it. Detectors with such helpers extend this."""
        return self.load()

    @property
    def weights_id(self) -> str:
        """``name@sha256[:12]``; before loading, the sha256 the registry records (the full file is
        checked against it when the tensors load)."""
        if self._loaded is not None:
            return self._loaded.id
        entry = self.weights_entry()
        return f"{entry.name}@{entry.sha256[:12]}"

    @property
    def calibration(self) -> dict[str, Any]:
        return self.card.get("calibration", {})

    @property
    def threshold(self) -> float:
        return float(self.calibration.get("threshold", 0.5))

    @property
    def aggregation_name(self) -> str:
        """The aggregation in use: the constructor's, else the card's, else the spec's."""
        return self.aggregation or self.calibration.get("aggregation") or self.spec.aggregation

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.card.get("preprocessing", {})

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def build(self, weights: Any) -> Any:
        """Build the ``nn.Module`` from :class:`~forensics.weights.LoadedWeights` (card args + tensors)."""

    @abstractmethod
    def units(self, media: Any) -> list[Unit]:
        """Turn media into network inputs; raise :class:`SkipDetection` when there is nothing to score."""

    def iter_units(self, media: Any) -> Iterator[Unit]:
        """The units one by one, for :meth:`detect`, which scores them batch by batch.

        Default: :meth:`units`. A detector with many large inputs (an hour of audio windows)
        overrides this with a generator and sets ``keeps_inputs = False``: :meth:`detect` then
        frees each input once scored, so memory holds one batch, not the whole file.
        """
        return iter(self.units(media))

    def plan(self, media: Any) -> None:
        """Announce what this detector will read from ``media``, before any detector decodes it, so that the one
        decoding first makes it in the same pass (``mouth_render``'s crops come from ``lip_sync``'s mouth pass).
        Called by the scan for every detector of a file; default: nothing."""
        return None

    def context_logits(self, units: list[Unit], logits: np.ndarray) -> np.ndarray:
        """Unit logits revised with context across the units of one file, after the network and before
        calibration (lip_sync averages each window with its neighbours on the same track). Default: as is."""
        return logits

    def evidence(self, media: Any, units: list[Unit], logits: np.ndarray) -> dict[str, Any]:
        """Detector-specific facts for the result (offsets, attribution...). Default: none."""
        return {}

    def explain(self, media: Any, segment: Any) -> np.ndarray | None:
        """A heatmap (H x W floats in [0, 1]) over the frame region of ``segment``'s box, or ``None``.

        Detectors that can localise evidence override this; reports overlay it on thumbnails.
        """
        return None

    def params(self) -> dict[str, Any]:
        """The parameters recorded with every result."""
        return {"aggregation": self.aggregation_name, "batch_size": self.batch_size, "device": self.device}

    # -- shared plumbing -------------------------------------------------------------------
    def logits_tensor(self, batch: Any) -> Any:
        """One logit per unit for a batch tensor, with gradients (fine-tuning uses this too).

        Override when a network's input is not the stacked unit arrays as they are.
        """
        return self.model(batch).float().reshape(len(batch), -1)[:, 0]

    def batched(self, fn: Callable[[Any], Any], xs: np.ndarray, empty: np.ndarray) -> np.ndarray:
        """Apply ``fn`` to ``xs`` in batches on ``device`` without gradients; ``empty`` when there are none."""
        import torch

        self.load()
        out = []
        with torch.inference_mode():
            for i in range(0, len(xs), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(xs[i : i + self.batch_size])).to(self.device)
                if batch.dim() == 4:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                out.append(fn(batch).float().cpu().numpy())
        return np.concatenate(out) if out else empty

    def score_batch(self, batch: list[Unit]) -> np.ndarray:
        """Logits for a batch of units (:meth:`detect` and :meth:`decision_function` score through it).

        Override to keep per-unit network outputs that :meth:`evidence` reads in ``Unit.extra``,
        instead of running the network a second time there.
        """
        return self.forward(np.stack([u.x for u in batch]))

    def forward(self, xs: np.ndarray) -> np.ndarray:
        """Logits for a stack of unit inputs, batched on ``device``; one logit per unit."""
        return self.batched(self.logits_tensor, xs, np.zeros(0, np.float32))

    def _prepare(self, media_or_path: Any) -> Any:
        from forensics.media import Media, open_media

        media = media_or_path if isinstance(media_or_path, Media) else open_media(media_or_path)
        if media.info.kind not in self.spec.kinds:
            raise SkipDetection(f"{self.spec.name} scores {'/'.join(self.spec.kinds)}, not {media.info.kind}")
        return media

    def decision_function(self, media_or_path: Any) -> tuple[list[Unit], np.ndarray]:
        """Raw logits (higher = more fake), one per unit, with the units (and their inputs)."""
        self.load()
        return self._score(self._prepare(media_or_path), keep_inputs=True)

    def predict_proba(self, media_or_path: Any) -> tuple[list[Unit], np.ndarray]:
        """Calibrated P(fake) per unit."""
        units, logits = self.decision_function(media_or_path)
        return units, calibrate(logits, self.calibration)

    def _score(self, media: Any, *, keep_inputs: bool) -> tuple[list[Unit], np.ndarray]:
        """Units and their logits, scored a batch at a time as :meth:`iter_units` yields them;
        without ``keep_inputs`` each input is freed once scored."""
        if self._members:
            return self._ensemble_score(media)
        units: list[Unit] = []
        logits: list[np.ndarray] = []
        batch: list[Unit] = []
        for unit in itertools.chain(self.iter_units(media), [None]):
            if unit is not None:
                batch.append(unit)
            if batch and (unit is None or len(batch) == self.batch_size):
                logits.append(self.score_batch(batch))
                if not keep_inputs:
                    for u in batch:
                        u.x = _FREED
                units += batch
                batch = []
        if not units:
            raise SkipDetection("nothing to score")
        return units, self.context_logits(units, np.concatenate(logits))

    def _ensemble_score(self, media: Any) -> tuple[list[Unit], np.ndarray]:
        """An ensemble's one unit over the whole file: its combination of the members' calibrated file scores
        (as logits). Every member scores the same media; a member that skips the file skips it."""
        import torch

        z, start, end = [], math.inf, 0.0
        for member in self._members:
            units, logits = member._score(media, keep_inputs=False)
            p = min(max(member.file_score(logits, [u.track for u in units])[0], 1e-6), 1 - 1e-6)
            z.append(math.log(p / (1 - p)))
            start, end = min(start, min(u.start for u in units)), max(end, max(u.end for u in units))
        with torch.inference_mode():
            logit = self.model(torch.tensor([z], dtype=torch.float32, device=self.device)).float().cpu().numpy()
        return [
            Unit(_FREED, start, end, extra={"members": dict(zip(self.card["architecture"]["members"], z, strict=True))})
        ], logit

    def file_score(
        self, logits: np.ndarray, tracks: Sequence[int | None], calibration: dict[str, Any] | None = None
    ) -> tuple[float, np.ndarray]:
        """The file score and the calibrated unit scores from unit logits (after :meth:`context_logits`):
        ``calibration`` (default: the card's), then the aggregation. The one place a file score is made:
        :meth:`detect`, fine-tuning and evaluation all call it."""
        probs = calibrate(logits, self.calibration if calibration is None else calibration)
        return aggregate(self.aggregation_name, probs, tracks), probs

    def detect(self, media_or_path: Any) -> DetectionResult:
        """Score a file. Bad input becomes a ``skipped`` or ``error`` result, never a score."""
        t0 = time.perf_counter()
        name = self.spec.name
        weights_id: str | None = None
        try:
            self.load()
            weights_id = self.weights_id
            media = self._prepare(media_or_path)
            units, logits = self._score(media, keep_inputs=self.keeps_inputs)
            if not np.all(np.isfinite(logits)):
                raise DetectorError("network produced non-finite logits")
            score, probs = self.file_score(logits, [u.track for u in units])
            segments = [
                Segment(u.start, u.end, float(p), float(lg), frame=u.frame, box=u.box, track=u.track)
                for u, p, lg in zip(units, probs, logits, strict=True)
            ]
            ev = self.evidence(media, units, logits)
            return DetectionResult(
                name, weights_id, "ok", score=score, label=bool(score >= self.threshold), threshold=self.threshold,
                segments=segments, evidence=ev, elapsed_s=time.perf_counter() - t0,
                params=self.params(), version=library_version(),
            )  # fmt: skip
        except SkipDetection as exc:
            status, reason = "skipped", str(exc)
        except ForensicsError as exc:
            status, reason = "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
            status, reason = "error", f"{type(exc).__name__}: {exc}{where}"
        return DetectionResult(
            name, weights_id, status, reason=reason or status, elapsed_s=time.perf_counter() - t0,
            params=self.params(), version=library_version(),
        )  # fmt: skip
