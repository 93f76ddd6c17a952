"""Training: configs, optimisers and schedules, EMA, logging, checkpoints and the trainer."""
