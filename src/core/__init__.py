"""The ground floor: pieces every other package may use and that import nothing of proxbin.

- ``errors``: UserError (bad input, exit 2) and Diverged (loss NaN/inf, exit 3)
- ``io``: atomic file writes (temporary file, fsync, rename)
- ``checkpoint``: the checkpoint file format (save/load, RNG states, model weights in a file)
"""

from src.core.errors import Diverged, UserError

__all__ = ["Diverged", "UserError"]
