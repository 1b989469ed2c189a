"""Granularity-consistent mask tracking: keyframe selection (keyframes.py), automatic 2D masks
(masks2d/), object states (states.py), the per-frame driver (driver.py), propagation backends behind
one interface (base.py: reprojection.py, sam2_tracker.py), frames and projection (frames.py), and
lifting tracked 2D masks to 3D (lift.py). Learned backends import torch only when built.
"""
