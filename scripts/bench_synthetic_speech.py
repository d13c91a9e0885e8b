"""Throughput of ``synthetic_speech`` on this CPU: realtime factor of ``detect`` and milliseconds per window.

Scores a generated speech-like signal (or ``--file``) of ``--seconds`` seconds, written as FLAC, with
``--threads`` torch threads; the whole pipeline is timed (decode, 16 kHz, voice activity, features,
network, calibration). Usage::

    python scripts/bench_synthetic_speech.py --weights lcnn_v1 --seconds 120 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from forensics.detectors import create_detector
from forensics.train.vocoders import formant_voice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="lcnn_v1")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--file", type=Path, default=None, help="score this file instead of generated audio")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import soundfile as sf

    det = create_detector("synthetic_speech", args.weights).load()
    sr = int(det.preprocessing["sample_rate"])
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "speech.flac"
            sf.write(path, formant_voice(args.seconds, sr), sr)
        det.detect(path)  # warm-up
        times, cpu, units, dur = [], [], 0, 0.0
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            res = det.detect(path)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            units = len(res.segments)
            dur = res.evidence.get("audio_s", args.seconds) if res.status == "ok" else args.seconds
        best = min(times)
        print(f"{det.weights_id}: status {res.status} ({res.reason or 'ok'}), {units} windows over {dur:.1f}s audio")
        print(f"threads={args.threads}: {best:.3f}s per file, {dur / best:.1f}x realtime, "
              f"{1000 * best / max(units, 1):.1f} ms per window (whole pipeline)")  # fmt: skip
        print(f"CPU time {min(cpu):.3f}s: {dur / min(cpu):.1f}x realtime per busy core (wall time suffers when the"
              " machine is shared)")  # fmt: skip
        x = np.stack([u.x for u in det.units(det._prepare(path))])
        t0 = time.perf_counter()
        det.forward(x)
        print(f"network only: {1000 * (time.perf_counter() - t0) / len(x):.1f} ms per window")


if __name__ == "__main__":
    main()
