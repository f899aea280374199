"""The training engine behind src/train.py: ``run_stages(cfg, run_dir)`` runs one configured run
(with its pre-train stage when the protocol asks for one) and returns its results; ``Run`` is one
stage; ``EXIT_CODES`` maps a run's status to the process exit code.

Imported on first use: ``src.engine.runner`` pulls in Hydra, the models and the data, which a user of
``src.engine.loop`` or ``src.engine.distributed`` alone does not need.
"""

from importlib import import_module

_PUBLIC = {"run_stages": "src.engine.stages", "Run": "src.engine.runner", "EXIT_CODES": "src.engine.runner"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'src.engine' has no attribute {name!r}")
