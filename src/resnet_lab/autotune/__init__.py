"""Choosing precision and XLA by timing them on the machine at hand: the settings and their cache, the probe, its worker and the timing of a fit."""
