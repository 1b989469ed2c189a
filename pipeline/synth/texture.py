"""Procedural per-vertex colours: a base colour modulated by a material pattern and noise.

Patterns are functions of the vertex position, so they continue across the parts of an object
and look the same from every camera. Their random parameters come from the caller's Generator.
"""

from __future__ import annotations

import numpy as np


def smooth_noise(points: np.ndarray, rng: np.random.Generator, scale: float, n_waves: int = 6) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a sum of random plane waves of wavelength ~``scale``."""
    directions = rng.normal(size=(n_waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    frequencies = rng.uniform(0.6, 1.6, n_waves) * (2 * np.pi / scale)
    phases = rng.uniform(0, 2 * np.pi, n_waves)
    waves = np.sin(points @ (directions * frequencies[:, None]).T + phases)
    return waves.sum(axis=1) / np.sqrt(n_waves / 2)


def wood(points: np.ndarray, rng: np.random.Generator, grain_axis: int) -> np.ndarray:
    """Brightness factor of wood: fine grain lines along ``grain_axis`` that wander slowly."""
    across = [k for k in range(3) if k != grain_axis]
    wander = 0.04 * smooth_noise(points, rng, scale=0.5)
    coordinate = points[:, across[0]] + 0.7 * points[:, across[1]] + wander
    grain = np.sin(2 * np.pi * coordinate / rng.uniform(0.03, 0.06))
    return 1.0 + 0.09 * grain + 0.05 * smooth_noise(points, rng, scale=0.3)


def tiles(points: np.ndarray, rng: np.random.Generator, tile_size: float) -> np.ndarray:
    """Brightness factor of a tiled floor: per-tile tone and darker grout lines."""
    cells = np.floor(points[:, :2] / tile_size).astype(np.int64)
    tones = rng.uniform(0.9, 1.1, size=(64, 64))  # per-tile tone, repeating every 64 tiles
    factor = tones[cells[:, 0] % 64, cells[:, 1] % 64]
    offset = points[:, :2] / tile_size - cells
    near_edge = np.minimum(offset, 1.0 - offset).min(axis=1) * tile_size < 0.012
    return np.where(near_edge, 0.65, factor)


def stripes(points: np.ndarray, rng: np.random.Generator, axis: int, period: float) -> np.ndarray:
    """Brightness factor of a striped fabric or label along ``axis``."""
    phase = rng.uniform(0, period)
    band = ((points[:, axis] + phase) % period) < 0.5 * period
    return np.where(band, 1.0, rng.uniform(0.7, 0.85))


def panels(points: np.ndarray, seams: list[tuple[int, float]], width: float = 0.012) -> np.ndarray:
    """Brightness factor with dark seams at given (axis, coordinate) lines, e.g. cabinet doors."""
    factor = np.ones(len(points))
    for axis, value in seams:
        factor[np.abs(points[:, axis] - value) < width] = 0.45
    return factor


def finish(base_rgb, factor: np.ndarray, rng: np.random.Generator, noise: float = 0.025) -> np.ndarray:
    """Combine a base colour (0..1), a brightness factor and per-vertex noise into uint8 RGB."""
    rgb = np.asarray(base_rgb, np.float64)[None, :] * factor[:, None]
    rgb = rgb + rng.normal(0.0, noise, size=rgb.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
