"""Scan a folder of downloaded media and print the most suspicious files.

A short script over the public API to copy and adapt:

    python scripts/scan_folder.py ~/Downloads/campaign -o campaign.jsonl
"""

from __future__ import annotations

import argparse

import forensics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("-o", "--output", default="results.jsonl")
    ap.add_argument("--detectors", default=None, help="comma-separated names (default: all)")
    args = ap.parse_args()

    # Each finished file is appended to the JSONL at once; re-running resumes where it stopped.
    for report in forensics.scan(args.folder, detectors=args.detectors, output=args.output):
        v = report.verdict
        score = f"{v.score:.3f}" if v.score is not None else "  -  "
        print(f"{v.label:>7} {score} {report.path}")

    df = forensics.load_results(args.output)
    ok = df[df.status == "ok"]
    print("\nMost suspicious (file, detector, score, where):")
    for _, row in ok.sort_values("score", ascending=False).head(10).iterrows():
        print(f"  {row.path}  {row.detector}  {row.score:.3f}  {row.top_start:.1f}-{row.top_end:.1f} s")


if __name__ == "__main__":
    main()
