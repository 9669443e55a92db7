"""Training a built model: the one build-and-compile recipe, optimizer and schedule, callbacks, checkpoints and evaluation."""
