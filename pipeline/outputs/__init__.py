"""Outputs: evaluation against ground truth, exports for trainers and ScanNet's benchmark, summary
tables, and the report's pictures (report.py, drawn by views.py)."""
