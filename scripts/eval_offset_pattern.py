"""How `lip_sync` describes and scores each file's audio-video offset over time: real clips with their own
audio, with the whole track shifted (a constant offset, as encoders and re-uploads leave), spliced (delayed
0.4 s from the midpoint on) and dubbed (another clip's speech). Per condition: the main track's
``offset_pattern`` and the files flagged at the card's threshold.

``--clips card``: the held-out real clips of the card (they calibrate it). ``--clips independent``: real talking
heads of sources the lip_sync networks never trained on nor were calibrated with (interviews, an address, a
radio studio, a film scene, two 720p talking heads; ``forensics.train.lip_sync_eval.INDEPENDENT_REPOS``).

    python scripts/eval_offset_pattern.py [--clips card|independent] [--shifts 0.3 -0.4] [--threads 2]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import forensics
from forensics.train import lip_sync_eval as le
from forensics.train.lip_sync_data import shift_wav

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["in sync", "constant offset", "offset changes", "too short"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--clips", choices=("card", "independent"), default="card")
    ap.add_argument("--shifts", type=float, nargs="*", default=[0.3, -0.4])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = forensics.create_detector("lip_sync", args.weights)
    sr = int(det.preprocessing["sample_rate"])
    paths = le.card_clip_paths(det.card, args.data) if args.clips == "card" else le.independent_clip_paths(args.data)
    clips = le.Clip.open_with_audio(paths, sr, print)
    patterns: dict[str, Counter] = {}
    flagged: dict[str, list[bool]] = {}
    for i, clip in enumerate(clips):
        half = len(clip.wav) // 2
        other = clips[(i + 1) % len(clips)].wav
        audio = {
            "own audio": clip.wav,
            **{f"shifted {s:+.1f} s": shift_wav(clip.wav, s, sr) for s in args.shifts},
            "spliced +0.4 s at the midpoint": np.concatenate([clip.wav[:half], shift_wav(clip.wav, 0.4, sr)[half:]]),
            "dubbed (another clip's speech)": np.resize(other, len(clip.wav)),
        }
        for name, wav in audio.items():
            res = le.detect_with(det, clip, wav, name, print)
            pattern = res.evidence["offset_pattern"]["pattern"] if res else "not scored"
            patterns.setdefault(name, Counter())[pattern] += 1
            if res is not None:
                flagged.setdefault(name, []).append(bool(res.label))
            detail = f"score {res.score:.3f} {res.evidence['offset_pattern']}" if res else ""
            print(f"{clip.name[:50]:50} {name:32} {pattern:16} {detail}")
    print(f"\n{det.weights_id} (file threshold {det.threshold:.3f}), {len(clips)} {args.clips} clips\n")
    print("| audio | " + " | ".join(KINDS) + " | not scored | files flagged |\n|---|" + "---|" * (len(KINDS) + 2))
    for name, c in patterns.items():
        f = flagged.get(name, [])
        cells = [str(c[k]) for k in KINDS] + [str(c["not scored"]), f"{sum(f)} of {len(f)}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
