"""The files of a fitted model folder (no PyTorch needed to look for one)."""

MODEL_FILE = "model.safetensors"  # the weights: points, descriptors, networks
CONFIG_FILE = "config.json"  # their configuration and the fit's summary
