"""Training engine shared by detection and pretraining: checkpoints, EMA, schedule, DDP, logging."""
