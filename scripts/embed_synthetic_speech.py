"""Cache per-window speech features of every audio row of ``../shared/data`` (and of channel variants of it).

For each file and variant: decode at 16 kHz mono, apply the variant's channel, cut the detector's speech
windows (voice-activity test on the signal, then loudness-normalised to -23 dBFS, so neither level nor
sample rate nor file format is a shortcut), and store per window

- ``aasist``: the frozen published AASIST's graph-attention readout (``AASIST.embed``, 160 values),
- ``aasist_logit``: its own 2-class logits (spoof, bona fide) on the same windows,
- ``lcnn``: the penultimate layer of our ``lcnn_v1`` (64 values) and ``lfcc``: mean and standard deviation
  of ``gmm_v1``'s LFCCs with deltas (120 values, :func:`~forensics.detectors.synthetic_speech.lfcc_stats`)
  (``--features cheap``: every speech window; ``--features aasist``: the middle one only).

Variants: ``original``, ``aac64`` (the file re-encoded as :func:`forensics.train.reencode.reencode` does),
``augN`` (:func:`forensics.train.vocoders.wide_channel` drawn with seed N and the file's index). One ``.npz``
per file and variant under ``--out``; reruns skip what exists (resumable). A file without speech windows
gets an empty record (the detector skips it too).

    python scripts/embed_synthetic_speech.py --variants original,aac64,aug1 --out runs/speech_features
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from forensics.detectors.synthetic_speech import lfcc_stats, speech_windows, window_features
from forensics.media import open_media
from forensics.train.manifest import read_manifest
from forensics.train.reencode import reencode
from forensics.train.speech_head import LOUDNESS, cache_path
from forensics.train.vocoders import wide_channel
from forensics.weights import load_weights

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def variant_audio(path: Path, variant: str, index: int, tmp: Path) -> np.ndarray:
    """The file's 16 kHz mono signal through ``variant``'s channel."""
    if variant == "aac64":
        return open_media(reencode(path, tmp, "aac64")).audio(16000)
    wav = open_media(path).audio(16000)
    if variant.startswith("aug"):
        wav, _ = wide_channel(wav, 16000, np.random.default_rng([int(variant[3:]), index]))
    return wav


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="original,aac64")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backbone", default="synthetic_speech.aasist")
    ap.add_argument("--features", choices=("aasist", "cheap"), default="aasist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reverse", action="store_true", help="the files in reverse order (a second process)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from forensics.nn.zoo import build_network

    bw = load_weights(args.backbone)
    net = build_network(bw.card["architecture"])
    net.load_state_dict({k: v.float() for k, v in bw.tensors.items()})
    aasist = net.net.to(memory_format=torch.channels_last).eval()  # oneDNN: ~40 % faster here
    pre = dict(bw.card["preprocessing"], **LOUDNESS)
    lw = load_weights("synthetic_speech.lcnn_v1")
    from forensics.nn.synthetic_speech import build_network as build_ours

    lcnn = build_ours(lw.card["architecture"]["name"], lw.card["architecture"].get("args", {}))
    lcnn.load_state_dict({k: v.float() for k, v in lw.tensors.items()})
    lcnn.eval()
    seen: list[torch.Tensor] = []
    lcnn.out.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    gmm_pre = load_weights("synthetic_speech.gmm_v1").card["preprocessing"]
    lcnn_pre, n_lcnn = lw.card["preprocessing"], round(lw.card["preprocessing"]["window_s"] * 16000)

    rows = [r for r in read_manifest(DATA) if r.kind == "audio"]
    order = np.random.default_rng(0).permutation(len(rows))  # a partial cache still spans the families
    order = order[::-1] if args.reverse else order
    variants = args.variants.split(",")
    t0, done, secs = time.time(), 0, 0.0
    for i in order:  # every variant of a file before the next file: a partial cache is paired
        r = rows[i]
        for variant in variants:
            dest = cache_path(args.out / args.features, variant, r.file)
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                wav = variant_audio(DATA / r.file, variant, int(i), Path(tmp))
            chunks = [c for _, _, c in speech_windows(wav, pre)]
            rec: dict[str, np.ndarray] = {"seconds": np.float32(wav.size / 16000), "windows": np.int32(len(chunks))}
            if chunks and args.features == "aasist":
                k = len(chunks) // 2  # the middle speech window only: AASIST costs seconds a window here
                with torch.inference_mode():
                    emb = aasist.embed(torch.from_numpy(chunks[k][None]))
                    rec["aasist"], rec["aasist_logit"] = emb.numpy(), aasist.out_layer(emb).numpy()
                rec["window_index"] = np.int32(k)
            elif chunks:
                with torch.inference_mode():
                    seen.clear()
                    lcnn(torch.from_numpy(np.stack([window_features(c[:n_lcnn], lcnn_pre) for c in chunks])))
                    rec["lcnn"] = seen[0].numpy()
                rec["lfcc"] = np.stack([lfcc_stats(c[:n_lcnn], gmm_pre) for c in chunks])
            part = dest.with_suffix(".part.npz")
            np.savez(part, **rec)
            part.rename(dest)
            done, secs = done + 1, secs + wav.size / 16000
            if done % 25 == 0:
                el = time.time() - t0
                print(f"{done} records, {secs:.0f} s audio in {el:.0f} s ({secs / el:.1f}x realtime)", flush=True)
    print(f"finished ({done} new records)", flush=True)


if __name__ == "__main__":
    main()
