"""Model wing: encoders (torchvision images, transformers text) and the two multi-modal variants."""
