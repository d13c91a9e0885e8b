"""Writers and readers of scan results (JSONL, CSV, Parquet, HTML)."""

from forensics.report.html import write_html
from forensics.report.jsonl import append_record, read_records, repair
from forensics.report.tables import export, frame, load_results, rows

__all__ = ["append_record", "export", "frame", "load_results", "read_records", "repair", "rows", "write_html"]
