"""Configs: typed schemas Hydra composes against, their allowed values and resolvers, and the checks run first."""
