"""Choosing precision and XLA by timing them here: settings and cache, the probe, its worker, timing a fit."""
