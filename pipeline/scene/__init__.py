"""Scene geometry shared by every method: geometric helpers, TSDF mesh fusion, and superpoints
(Felzenszwalb–Huttenlocher over-segmentation; C kernels in segmentator.c, numba fallback)."""
