"""scan-pseudolabels: per-point 3D instance pseudo-labels from indoor RGB-D scans."""

__version__ = "0.1.0"
