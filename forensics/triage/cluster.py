"""Near-duplicate clusters over the fingerprints of a results file: which files are the same content.

Candidate pairs come from an index that never compares all pairs: frame hashes go into ``TABLES``
locality-sensitive tables keyed by ``KEY_BITS`` fixed bits each (bit-sampling LSH for Hamming space, the
approximate form of multi-index hashing; a key and its mirrored form share a bucket, so mirrored copies
meet), audio landmarks into buckets by value (a consistent 1-in-4
subsample of them: copies share the same subsample). Files sharing a frame bucket, or three landmark
buckets, become a candidate pair;
pairs are verified on the whole fingerprints, most shared buckets first, and joined with union-find
(a pair already in one cluster is not verified). Buckets held by more than ``MAX_BUCKET`` entries
carry no identity (black frames, silence) and are dropped.

Verification:

- video: the frames of one file against each region, mirrored or not, of the other's frames (a copy
  cropped, bordered, mirrored or rescaled matches one region); the files match when at least
  ``VIDEO_SHARE`` of one side's frames (and ``MIN_FRAMES`` of them, or the one frame of an image) are
  within ``VIDEO_BITS`` bits (``IMAGE_BITS`` against a single frame) of a frame of the other, at one
  time offset; nearly still videos with sound
  must match by sound as well;
- audio: landmarks shared at one constant time offset (an excerpt's offset into the original): at
  least ``AUDIO_HITS`` of them and ``AUDIO_SHARE`` of the shorter side's landmarks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from forensics.triage.fingerprint import AUDIO_SR, HOP, MIRROR_MASK, Fingerprint, decode, mirror, popcount

TABLES, KEY_BITS, SEED = 10, 28, 29
INDEX_FRAMES = 48  # frames per file in the index (evenly chosen; verification uses all)
INDEX_REGIONS = 8  # ... of which this many also enter with every cropped region
SHIFTS = 3  # each entry pairs with the next SHIFTS entries of its bucket (bucket sorted by file)
MAX_BUCKET = 400
AUDIO_MIN_BUCKETS = 3
VIDEO_BITS, VIDEO_SHARE, MIN_FRAMES, OFFSET_S = 6, 0.6, 3, 1.0
IMAGE_BITS = 9  # a one-frame side (an image) has no other frame to confirm it: allowed a little more
AUDIO_HITS, AUDIO_SHARE = 12, 0.2  # copies share >= 0.37 (AAC/Opus, excerpts), unrelated speech <= 0.09
NAME_DATE = re.compile(r"(?<!\d)(20\d\d|19\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")


@dataclass
class Match:
    """Why two files are in one cluster: ``by`` video or audio, and the verifying measure."""

    a: int
    b: int
    by: str
    share: float
    offset_s: float | None = None


@dataclass
class Cluster:
    """Files of one content, earliest first; ``earliest`` is the first seen and ``date_source`` says by what."""

    id: int
    members: list[int]
    earliest: int
    matches: list[Match] = field(default_factory=list)


# -- verification --------------------------------------------------------------------------------


def video_share(x: Fingerprint, y: Fingerprint) -> float:
    """Share of ``y``'s frames within ``VIDEO_BITS`` of a frame of ``x`` (one region of ``x``, mirrored or
    not, for all of them: a copy is cropped or mirrored as a whole). With ``MIN_FRAMES`` or more matched
    frames, the matches must also keep time: at least half of them at one offset (+- ``OFFSET_S``) between
    the files, as a copy's frames do and a similar-looking other recording's do not."""
    assert x.frames is not None and y.frames is not None and x.t is not None and y.t is not None
    configs = np.concatenate([x.frames, mirror(x.frames)], axis=1)  # x frames by (regions, mirrored regions)
    d = popcount(configs[:, :, None] ^ y.frames[None, None, :, 0])  # x frames, configs, y frames
    near = d.min(axis=0) <= (IMAGE_BITS if min(len(x.frames), len(y.frames)) == 1 else VIDEO_BITS)
    counts = near.sum(axis=1)
    for c in np.argsort(-counts, kind="stable"):  # the best configuration that keeps time
        if counts[c] < min(MIN_FRAMES, near.shape[1]):
            break
        if counts[c] >= MIN_FRAMES:
            offsets = x.t[d[:, c].argmin(axis=0)[near[c]]] - y.t[near[c]]
            if np.mean(np.abs(offsets - np.median(offsets)) <= OFFSET_S) < 0.5:
                continue
        return float(counts[c]) / near.shape[1]
    return 0.0


def video_match(a: Fingerprint, b: Fingerprint) -> float:
    """How well two files' frames match (0 when they do not): the better direction's share. Two videos with
    sound whose pictures are (nearly) still must also match by sound: a still shot says little."""
    if not (a.has_video and b.has_video):
        return 0.0
    share = max(video_share(a, b), video_share(b, a))
    if share < VIDEO_SHARE:
        return 0.0
    still = min(len(a.frames), len(b.frames)) <= 2  # type: ignore[arg-type]
    if still and a.has_audio and b.has_audio and not audio_match(a, b)[0]:
        return 0.0
    return share


def audio_match(a: Fingerprint, b: Fingerprint) -> tuple[float, float | None]:
    """``(share, offset in seconds of b into a)`` of the landmarks two files share at one offset; 0 when too few."""
    if not (a.has_audio and b.has_audio):
        return 0.0, None
    assert a.hashes is not None and b.hashes is not None and a.anchors is not None and b.anchors is not None
    oa, ob = np.argsort(a.hashes, kind="stable"), np.argsort(b.hashes, kind="stable")
    ha, hb = a.hashes[oa], b.hashes[ob]
    lo, hi = np.searchsorted(ha, hb, "left"), np.searchsorted(ha, hb, "right")
    n = hi - lo
    if not n.sum():
        return 0.0, None
    rows = np.repeat(np.arange(hb.size), n)
    cols = np.concatenate([np.arange(s, e) for s, e in zip(lo[n > 0], hi[n > 0], strict=True)])
    offsets = a.anchors[oa][cols].astype(np.int64) - b.anchors[ob][rows].astype(np.int64)
    low = int(offsets.min())
    counts = np.bincount(offsets - low)
    hits = np.convolve(counts, [1, 1, 1])[1:-1]  # +-1 frame of jitter: an excerpt's cut falls between hops
    k = int(np.argmax(hits))
    share = float(hits[k]) / min(a.hashes.size, b.hashes.size)
    if hits[k] < AUDIO_HITS or share < AUDIO_SHARE:
        return 0.0, None
    return min(1.0, share), float(k + low) * HOP / AUDIO_SR


# -- index ---------------------------------------------------------------------------------------


def _bit_tables() -> list[np.ndarray]:
    """Per table, ``8 x 256`` lookups mapping each byte of a hash to its sampled bits' part of the key."""
    rng = np.random.default_rng(SEED)
    tables = []
    for _ in range(TABLES):
        bits = np.sort(rng.choice(np.arange(1, 64), KEY_BITS, replace=False))  # bit 0 (DC) is constant
        lut = np.zeros((8, 256), np.uint64)
        for pos, bit in enumerate(bits):
            byte, within = divmod(int(bit), 8)
            lut[byte, (np.arange(256) >> within) & 1 == 1] |= np.uint64(1 << pos)
        tables.append(lut)
    return tables


def _bucket_pairs(keys: np.ndarray, files: np.ndarray, n_files: int) -> np.ndarray:
    """Pair codes ``lo * n_files + hi`` of different files sharing a key (each entry with its next ``SHIFTS``
    in the bucket), oversized buckets left out. Keys and files sort as one uint64 (key above the file)."""
    shift = np.uint64(max(1, int(n_files - 1).bit_length()))
    packed = np.sort((keys.astype(np.uint64) << shift) | files.astype(np.uint64))
    k, f = packed >> shift, (packed & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.int64)
    starts = np.r_[0, np.flatnonzero(k[1:] != k[:-1]) + 1]
    sizes = np.diff(np.r_[starts, k.size])
    ok = np.repeat(sizes <= MAX_BUCKET, sizes)
    k, f = k[ok], f[ok]
    out = []
    for j in range(1, SHIFTS + 1):
        same = (k[j:] == k[:-j]) & (f[j:] != f[:-j])
        a, b = f[:-j][same], f[j:][same]
        out.append(np.minimum(a, b) * n_files + np.maximum(a, b))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _spread(n: int, k: int) -> np.ndarray | slice:
    """``k`` indices spread evenly over ``n`` items (all of them when ``n <= k``)."""
    return slice(None) if n <= k else np.linspace(0, n - 1, k).round().astype(np.int64)


def _video_entries(fps: Sequence[Fingerprint]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes and file numbers of the index: up to ``INDEX_FRAMES`` whole frames per file, and every region
    of ``INDEX_REGIONS`` of them."""
    hashes, files = [], []
    for i, fp in enumerate(fps):
        if not fp.has_video:
            continue
        assert fp.frames is not None
        pick = fp.frames[_spread(len(fp.frames), INDEX_FRAMES)]
        few = pick[_spread(len(pick), INDEX_REGIONS)]
        h = np.concatenate([pick[:, 0], few[:, 1:].reshape(-1)])
        hashes.append(h)
        files.append(np.full(h.size, i, np.int64))
    if not hashes:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate(hashes), np.concatenate(files)


def candidates(fps: Sequence[Fingerprint]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ``(n x 2 file numbers, shared buckets)``, most shared first: file pairs sharing a
    frame-hash bucket twice (once when either file has at most two frames: an image), or
    ``AUDIO_MIN_BUCKETS`` landmark buckets. One collision between videos is chance: copies collide often."""
    n_files = max(len(fps), 1)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    hashes, files = _video_entries(fps)
    if hashes.size:
        by_byte = hashes.view(np.uint8).reshape(-1, 8)  # little-endian: byte 0 holds bits 0-7
        codes = []
        mask = np.frombuffer(np.uint64(MIRROR_MASK).tobytes(), np.uint8)
        for lut in _bit_tables():
            keys = np.zeros(hashes.size, np.uint64)
            for byte in range(8):
                keys |= lut[byte][by_byte[:, byte]]
            flipped = np.bitwise_or.reduce([lut[byte][mask[byte]] for byte in range(8)])
            keys = np.minimum(keys, keys ^ flipped)  # a hash and its mirror share a bucket
            codes.append(_bucket_pairs(keys, files, n_files))
        pairs, counts = np.unique(np.concatenate(codes), return_counts=True)
        few = np.array([fp.has_video and len(fp.frames) <= 2 for fp in fps])  # type: ignore[arg-type]
        keep = (counts >= 2) | few[pairs // n_files] | few[pairs % n_files]
        found.append((pairs[keep], counts[keep]))
    audio = [(fp.hashes, np.full(fp.hashes.size, i, np.int64)) for i, fp in enumerate(fps) if fp.has_audio]
    if audio:
        h = np.concatenate([a for a, _ in audio]).astype(np.uint64)  # type: ignore[misc]
        f = np.concatenate([b for _, b in audio])
        keep = ((h * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(30) == 0  # 1 in 4, by value
        pairs, counts = np.unique(_bucket_pairs(h[keep], f[keep], n_files), return_counts=True)
        found.append((pairs[counts >= AUDIO_MIN_BUCKETS], counts[counts >= AUDIO_MIN_BUCKETS]))
    if not found:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    pairs, inverse = np.unique(np.concatenate([p for p, _ in found]), return_inverse=True)
    counts = np.bincount(inverse, np.concatenate([c for _, c in found])).astype(np.int64)
    order = np.argsort(-counts, kind="stable")
    pairs, counts = pairs[order], counts[order]
    return np.stack([pairs // n_files, pairs % n_files], axis=1), counts


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster_fingerprints(fps: Sequence[Fingerprint]) -> tuple[list[int], list[Match]]:
    """A cluster root per file (files of one content share it) and the verified matches that joined them."""
    uf = _UnionFind(len(fps))
    matches: list[Match] = []
    pairs, _ = candidates(fps)
    for a, b in pairs.tolist():
        if uf.find(a) == uf.find(b):
            continue
        share = video_match(fps[a], fps[b])
        if share:
            matches.append(Match(a, b, "video", round(share, 3)))
            uf.union(a, b)
            continue
        share, offset = audio_match(fps[a], fps[b])
        if share:
            matches.append(Match(a, b, "audio", round(share, 3), round(offset or 0.0, 2)))
            uf.union(a, b)
    return [uf.find(i) for i in range(len(fps))], matches


# -- records -------------------------------------------------------------------------------------


def seen_date(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(ISO date, source)`` of when a file was first seen: the container's or EXIF creation time, else a
    date in its name, else its file time (from the record, or the file itself if it is still there)."""
    prov = record.get("provenance") or {}
    dates = prov.get("dates") or {}
    for source in ("creation_time", "exif_datetime"):
        if dates.get(source):
            return str(dates[source]), source
    m = NAME_DATE.search(Path(str(record.get("path", ""))).name)
    if m:
        return f"{m[1]}-{m[2]}-{m[3]}T00:00:00+00:00", "name_date"
    if dates.get("file_mtime"):
        return str(dates["file_mtime"]), "file_mtime"
    try:
        mtime = Path(record["path"]).stat().st_mtime
    except (OSError, KeyError, TypeError):
        return None, None
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds"), "file_mtime"


def _sort_key(date: str | None) -> tuple[int, float]:
    if date is None:
        return 1, 0.0
    try:
        d = datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        return 1, 0.0
    return 0, (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


def cluster_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per file of a results file (its last record per path): its cluster, cluster size, the
    cluster's earliest-seen file, its own date and the date's source, and what matched it."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        latest[rec["path"]] = rec
    recs = list(latest.values())
    fps = [decode(r.get("fingerprint")) for r in recs]
    roots, matches = cluster_fingerprints(fps)
    dates = [seen_date(r) for r in recs]
    members: dict[int, list[int]] = {}
    for i, root in enumerate(roots):
        members.setdefault(root, []).append(i)
    groups = sorted(members.values(), key=lambda m: (-len(m), min(_sort_key(dates[i][0]) for i in m), m[0]))
    why: dict[int, Match] = {}
    for m in matches:
        why.setdefault(m.b, m)
        why.setdefault(m.a, m)
    rows: list[dict[str, Any]] = [{} for _ in recs]
    for cid, group in enumerate(groups, start=1):
        group.sort(key=lambda i: (_sort_key(dates[i][0]), recs[i]["path"]))
        first = group[0]
        for i in group:
            m = why.get(i)
            other = None if m is None else (m.a if m.b == i else m.b)
            rows[i] = {
                "path": recs[i]["path"],
                "sha256": recs[i].get("sha256"),
                "cluster": cid,
                "cluster_size": len(group),
                "earliest": recs[first]["path"],
                "is_earliest": i == first,
                "date": dates[i][0],
                "date_source": dates[i][1],
                "fingerprinted": fps[i].has_video or fps[i].has_audio,
                "matched_with": recs[other]["path"] if other is not None and len(group) > 1 else None,
                "matched_by": m.by if m is not None and len(group) > 1 else None,
                "match_share": m.share if m is not None and len(group) > 1 else None,
                "offset_s": m.offset_s if m is not None and len(group) > 1 else None,
            }
    return rows


CLUSTER_COLUMNS = ["cluster", "cluster_size", "cluster_earliest", "seen", "seen_source"]


def cluster_columns(paths: Iterable[str], by_path: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """The table's cluster columns for ``paths`` from sidecar rows by path (``None`` for paths it lacks)."""
    keys = ("cluster", "cluster_size", "earliest", "date", "date_source")
    rows = [by_path.get(p, {}) for p in paths]
    return {col: [r.get(k) for r in rows] for col, k in zip(CLUSTER_COLUMNS, keys, strict=True)}


def sidecar(results: str | Path) -> Path:
    """Where the clusters of ``results.jsonl`` are written: ``results.clusters.jsonl`` beside it."""
    p = Path(results)
    return p.with_name(p.name.removesuffix(".jsonl") + ".clusters.jsonl")


def cluster(results: str | Path, *, out: str | Path | None = None) -> list[dict[str, Any]]:
    """Cluster the files of a results JSONL; write the rows to its :func:`sidecar` (which
    :func:`forensics.report.load_results` joins) and, when given, to ``out`` (``.csv``, ``.jsonl``)."""
    import json

    from forensics.records import read_records

    rows = cluster_records(read_records(Path(results)))
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    side = sidecar(results)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(side)
    if out is not None:
        out = Path(out)
        if out.suffix == ".csv":
            import csv

            with open(out, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path"])
                writer.writeheader()
                writer.writerows(rows)
        else:
            out.write_text(text, encoding="utf-8")
    return rows
