"""How `lip_sync` describes each file's offset over time (evidence ``offset_pattern``), on the held-out real
clips of its card with their own audio, with the whole track shifted (a constant offset, as encoders and
re-uploads leave), spliced (delayed from the midpoint on) and dubbed (another clip's speech).

    python scripts/eval_offset_pattern.py [--shifts 0.3 -0.4] [--threads 2]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--shifts", type=float, nargs="*", default=[0.3, -0.4])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = forensics.create_detector("lip_sync", args.weights)
    sr = int(det.preprocessing["sample_rate"])
    clips = [
        le.Clip.open(next((args.data / "real_video").glob(f"{name.removeprefix('real__')}.*")), sr)
        for name in det.card["training_data"]["validation"]
    ]
    conditions: dict[str, Counter] = {}
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
            pattern = res.evidence["offset_pattern"]["pattern"] if res else f"not scored ({res})"
            conditions.setdefault(name, Counter())[pattern] += 1
            print(f"{clip.name[:50]:50} {name:32} {pattern} {res.evidence['offset_pattern'] if res else ''}")
    print(f"\n{det.weights_id}, {len(clips)} held-out clips\n")
    kinds = ["in sync", "constant offset", "offset changes", "too short"]
    print("| audio | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds))
    for name, c in conditions.items():
        print(f"| {name} | " + " | ".join(str(c[k]) for k in kinds) + " |")


if __name__ == "__main__":
    main()
