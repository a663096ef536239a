"""Training wing: the trainer loop, losses, schedules, metrics, inference, the runtime (device, DDP),
``train()`` as a library function and the clean-model cache."""
