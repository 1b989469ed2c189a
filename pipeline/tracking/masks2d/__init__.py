"""Automatic 2D mask generators behind one interface (see base.py), and containment filtering.

Backends: ``sam`` (segment_anything), ``sam2`` (sam2), ``felzenszwalb`` (weight-free, scikit-image)
and ``oracle`` (rendered ground truth with granularity noise). Learned backends import torch only
when built.
"""
