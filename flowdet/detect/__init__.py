"""Detection stage: SimOTA assignment, losses, training, evaluation, PyTorch prediction."""
