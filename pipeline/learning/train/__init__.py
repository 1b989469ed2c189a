"""Training: losses, Hungarian matching, EMA, BEEP3D teacher-student, UnScene3D self-training, loop."""
