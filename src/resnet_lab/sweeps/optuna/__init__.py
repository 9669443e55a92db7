"""The Optuna search (``hparams_search=optuna``, ``hydra/sweeper=optuna_search``): a stored study, asked and told
in batches through the configured launcher, resumable by rerunning its command, pruning across processes.

``space`` reads the search space, ``study`` names, opens and checks the study, ``sweeper`` runs the trials, and
``summary`` says what came of them. The per-epoch report that prunes lives with training (``training/pruning``).
"""
