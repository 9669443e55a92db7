"""Training a model: the one build-and-compile recipe, optimizer and schedule, callbacks, checkpoints, evaluation."""
