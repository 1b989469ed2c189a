"""The I/O edge: scene readers (ScanNet layout, PLY), ingest into scene.h5, the HDF5 artifact store
with atomic writes and resume files, NYU40 class ids, model checkpoint loading, rule-script logging."""
