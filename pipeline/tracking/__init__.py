"""Granularity-consistent mask tracking: object states (states.py), the per-frame driver
(driver.py), propagation backends behind one interface (base.py: reprojection.py, sam2_tracker.py),
frames and projection (frames.py) and resume files (resume.py). Learned backends import torch only
when built.
"""
