"""UnScene3D pseudo masks: 2D/3D feature backends (features/), back-projection of 2D features onto
points (backproject.py) and masked iterative Normalized Cut over superpoints (ncut.py)."""
