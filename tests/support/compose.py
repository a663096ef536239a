"""Hydra composition of the packaged configs, and the override lists that make models and runs tiny."""

from __future__ import annotations

from emotic_mm.testkit import compose_cfg  # noqa: F401  (shared with the bench scripts)

# Encoders look at 32 px pictures: a step of the default (frozen EfficientNet-Lite0) or of a ResNet-18 on CPU
# takes milliseconds.
TINY_MODEL = ["model.image_encoder.input_size.context=32", "model.image_encoder.input_size.body=32"]
# A backbone that learns (the from-scratch ResNet-18), where a test needs its weights to move: a backdoor
# learnt into the convolutions, head-only fine-tuning that must leave them as they were.
LEARNING_BACKBONE = ["model/image_encoder=resnet18", *TINY_MODEL]
# A tiny training run: no loader workers, no TensorBoard, small batches (add trainer.epochs=N per test).
TINY_TRAIN = ["trainer.batch_size=16", "trainer.workers=0", "trainer.tensorboard=false", *TINY_MODEL]
