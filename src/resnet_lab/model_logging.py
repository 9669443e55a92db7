"""Models logged before the layout by package name this module as their loader (``loader_module`` in MLmodel):
they keep loading through it."""

from resnet_lab.tracking.model_logging import _load_pyfunc  # noqa: F401
