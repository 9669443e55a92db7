"""Networks from a typed spec: spec and checks, block kinds, plan, layers, blocks, the builder and its analysis."""
