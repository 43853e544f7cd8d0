"""The experiment shell, without Hydra: training, evaluation, checkpoints, reports, run folders and the
plain ``train``/``adapt``/``eval``/``report`` commands that the CLI calls."""
