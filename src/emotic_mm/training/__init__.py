"""Training wing: losses, metrics, checkpoints, the trainer and its distributed helpers."""
