"""Comparing runs: rows and groups of repeats, their statistics, tables, plots, and the comparison a sweep logs."""
