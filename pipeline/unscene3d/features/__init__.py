"""Feature backends for UnScene3D's pseudo masks.

2D (per-pixel maps of colour images, lifted to points by ``pipeline.unscene3d.backproject``):
  ``dino``  — self-supervised DINO ViT-S/8 (timm), loaded from the official checkpoint format.
  ``color`` — weight-free baseline: Lab colour and local colour statistics.
3D (per point):
  ``csc``       — sparse-convolution Res16UNet (spconv), loaded from this project's checkpoint format.
  ``geometric`` — weight-free baseline: normals, FPFH, height.
``aggregate`` turns point features into L2-normalised superpoint features (wide kernel embeddings a
chunk of points at a time). ``color.point_color_superpoint_features`` gives a point cloud without
frames its colour modality.
``structure`` flags floor, walls and ceiling among superpoints, for NCut to mask out.
"""
