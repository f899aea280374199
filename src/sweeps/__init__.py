"""Paper sweeps: a table's spec -> its training runs, launched as Hydra multiruns, and their records.

- :mod:`src.sweeps.spec_files`: ``configs/sweep/<paper>/<table>.yaml`` and the scales
  (``list_specs``, ``load_spec``, ``scales``, ``load_scale``; ``train_refusal`` for src/train.py).
- :mod:`src.sweeps.spec`: ``plan(table, scale)`` -> a ``Plan`` (jobs and printed cells), built by
  the cell product (:mod:`~src.sweeps.cells`), the job builder (:mod:`~src.sweeps.jobs`, each job
  named by the identity of the config :mod:`~src.sweeps.compose` resolves for it) and the cost
  estimator (:mod:`~src.sweeps.cost`); ``plan_many`` / ``find_shared``: the runs tables share.
- :mod:`src.sweeps.launch`: ``launch`` the missing jobs of a plan, ``statuses`` of its runs.
- :mod:`src.sweeps.store`: ``load`` the ``RunRecord``s a plan names, from run directories or wandb.
- :mod:`src.sweeps.smoke_data`: fabricated datasets for smoke-scale sweeps (``ensure``).
- :mod:`src.sweeps.in_process`: ``run`` one training run in this process (the vit_* scripts).

Nothing is imported here: ``src.sweeps.in_process`` pulls in the engine, the rest stays light.
"""
