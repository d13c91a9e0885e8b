"""Evaluate lip_sync through the full detector (decode, faces, mouth crops, audio, network, calibration).

1. Held-out real clips (never trained on) with their own audio and with the audio shifted by
   +-0.3/0.4/0.5 s: per speech window, is the shift detected (|offset| > 0.08 s), is the
   offset error <= 0.08 s, and how many aligned windows are flagged (score >= threshold) or show an
   offset (|offset| > 0.08 s). One rule for both kinds of window: the window threshold that flags 5 %
   of aligned windows, and the share of shifted windows it flags.
2. The same shift test on the HyperLips clips (2 real input videos and 5 fakes whose lips were
   rendered in sync with their audio): never trained on nor used to choose anything, 720p.
3. Dubbing: the held-out clips and the HyperLips inputs, each with the next clip's speech (another
   speaker) instead of its own: windows flagged, and file scores against their own audio.
4. Localisation: the same clips with their audio delayed 0.4 s from the midpoint on: windows flagged
   before and after the splice, and where the desync span starts.
5. Drift: the same clips with their audio falling behind 0.05 s per second: windows flagged once 0.2 s
   behind and while still within 0.08 s, and offsets against the delay plus the recording's own offset.
6. Bursts: 2 s / 4 s around the midpoint delayed 0.4 s or replaced by another speaker's speech: windows
   flagged inside, and more than 1 s away (the price of reading windows in context).
7. HyperLips lip-sync fakes vs their real input videos: file-level AUC.
8. Platform re-encoding (``--variants``, default original crf23 crf32 half aac64, as ``forensics evaluate``):
   the held-out clips and the HyperLips inputs re-encoded, then the shift test of 1 on them (``original``
   gives the same 10 clips untouched, for comparison).

    python scripts/eval_lip_sync.py [--weights lip_sync.sync_v10] [--write-card]

``--write-card`` records these numbers in the shipped card (metrics.full_pipeline) and re-saves it.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import forensics
from forensics.train import lip_sync_eval as le
from forensics.train.cards import write_card
from forensics.train.metrics import summarize
from forensics.train.reencode import reencode

ROOT = Path(__file__).resolve().parents[1]
HYPERLIPS_REAL, HYPERLIPS_FAKE = "semchan__HyperLips__test__*", "semchan__HyperLips__result__*"
log = functools.partial(print, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write-card", action="store_true")
    ap.add_argument(
        "--variants",
        nargs="*",
        default=["original", "crf23", "crf32", "half", "aac64"],
        help="re-encodings for the shift test of the real clips (forensics.train.reencode)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det = forensics.create_detector("lip_sync", args.weights)
    print(f"weights {det.weights_id}; threshold {det.threshold:.4f}; aggregation {det.aggregation_name}")

    sr = int(det.preprocessing["sample_rate"])
    held_out = [
        le.Clip.open(path, sr) for path in le.card_clip_paths(det.card, args.data)
    ]  # each clip is decoded once: the shift test first (it times that pass), then dubbing and splicing
    shifted, own_held_out = le.shift_test(det, held_out, log)
    print("held-out clips, audio shifted by +-0.3..0.5 s:", json.dumps(shifted, indent=1))
    hyper_real = [le.Clip.open(p, sr) for p in sorted((args.data / "real_video").glob(HYPERLIPS_REAL))]
    hyper_fake = [le.Clip.open(p, sr) for p in sorted((args.data / "fake_video").glob(HYPERLIPS_FAKE))]
    hyper_shifted, own_audio = le.shift_test(det, hyper_real + hyper_fake, log)
    print("HyperLips clips (2 real inputs + 5 fakes in sync by construction), audio shifted by +-0.3..0.5 s:")
    print(json.dumps(hyper_shifted, indent=1))

    reencoded = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            clips = held_out + hyper_real  # "original": the clips already open (frames and faces decoded once)
            if variant != "original":
                clips = [le.Clip.open(reencode(c.media.path, Path(tmp) / variant, variant), sr) for c in clips]
            reencoded[variant], _ = le.shift_test(det, clips, log)
            print(f"held-out clips and HyperLips inputs re-encoded {variant}, audio shifted:")
            print(json.dumps(reencoded[variant], indent=1))

    own_audio_all = own_held_out | own_audio
    dubbed = le.dub_test(det, held_out + hyper_real, log, own_audio_all)
    print("held-out clips and HyperLips inputs, each with the next clip's speech:", json.dumps(dubbed, indent=1))

    spliced = le.splice_test(det, held_out + hyper_real, log)
    print("held-out clips and HyperLips inputs, audio delayed 0.4 s from the midpoint:", json.dumps(spliced, indent=1))

    own = {name: v[2] for name, v in own_audio_all.items()}
    drifted = le.drift_test(det, held_out + hyper_real, log, own)
    print("held-out clips and HyperLips inputs, audio drifting 0.05 s per second:", json.dumps(drifted, indent=1))
    bursts = le.burst_test(det, held_out + hyper_real, log)
    print("held-out clips and HyperLips inputs, 2 s / 4 s bursts shifted or dubbed:", json.dumps(bursts, indent=1))

    labels, scores = [], []  # HyperLips fakes vs their inputs, each with its own audio
    for label, group in ((0, hyper_real), (1, hyper_fake)):
        for clip in group:
            res = own_audio[clip.name][0]
            score = res.score if res else None
            print(f"  {clip.name}: score={score}")
            if score is not None:
                labels.append(label)
                scores.append(score)
    timing = [v[1] for v in own_audio.values()]
    hyper = summarize(np.array(labels), np.array(scores))
    print("HyperLips fakes vs real inputs:", json.dumps(hyper | {"scores": [round(s, 4) for s in scores]}))
    print(f"seconds of compute per second of video (720p, {args.threads} threads): {np.mean(timing):.3f}")
    if args.write_card:
        lw = det.loaded_weights
        full = {
            "held_out_shifted_audio": shifted,
            "hyperlips_clips_shifted_audio": hyper_shifted,
            "dubbed_audio": dubbed,
            "spliced_audio": spliced,
            "drifting_audio": drifted,
            "audio_bursts": bursts,
            "hyperlips_fake_vs_real_inputs": hyper,
            "reencoded_shifted_audio": reencoded,
            "compute_s_per_video_s_720p": round(float(np.mean(timing)), 3),
            "command": f"python scripts/eval_lip_sync.py --threads {args.threads} --write-card",
        }
        card = dict(lw.card, metrics=dict(lw.card["metrics"], full_pipeline=full))
        path = write_card(lw.tensors, card, ROOT / "models")
        print(f"updated {path}")


if __name__ == "__main__":
    main()
