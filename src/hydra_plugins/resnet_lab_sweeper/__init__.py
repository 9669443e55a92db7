"""resnet-lab's Hydra sweeper: ``hydra/sweeper=until_resolved`` (seeds in rounds until every pair has a verdict)."""
