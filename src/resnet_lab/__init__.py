"""resnet-lab: compose any ResNet from Hydra configs, train it with Keras 3, compare runs in MLflow."""

__version__ = "0.1.0"
