"""Training wing: the trainer loop, losses, schedules, metrics, inference, the runtime (device, DDP)
and ``train()`` as a library function."""
