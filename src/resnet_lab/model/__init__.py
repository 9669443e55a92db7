"""Networks from a typed spec: the spec and its checks, the block kinds, the plan, layers, blocks, the one builder and its analysis."""
