"""Learning: the box partition for box supervision (boxes.py), the instance segmentation network
(model/), training (train/: BEEP3D, UnScene3D self-training) and final pseudo-labels (predict.py)."""
