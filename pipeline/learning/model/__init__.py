"""Instance segmentation network: sparse-voxel UNet backbone, superpoint pooling, query decoder."""
