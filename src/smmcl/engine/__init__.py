"""Training, evaluation and metrics: `trainer`, `evaluate`, `metrics`, `optim`, `checkpoint`."""
