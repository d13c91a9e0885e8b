"""Readers and writers over scan results: tables (pandas, CSV, Parquet) and the HTML report.

The JSONL record format itself lives in :mod:`forensics.records`.
"""

from forensics.report.html import write_html
from forensics.report.tables import export, frame, load_results, rows

__all__ = ["export", "frame", "load_results", "rows", "write_html"]
