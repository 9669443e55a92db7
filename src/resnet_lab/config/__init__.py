"""Configs: the typed schemas Hydra composes against, the values they allow, their resolvers and the checks run before anything is built."""
