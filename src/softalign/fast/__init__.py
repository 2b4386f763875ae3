"""softalign's fast CPU backend: everything that exists only for speed, behind one seam.

The model a reader studies is ``softalign/model`` (plain PyTorch). This package holds the
machinery that computes the same function faster on the CPU -- C kernels (``native/``), weights
packed once for oneDNN, shape-stable bf16 products, the chunked generator loss, a cheaper
dropout mask, one weight-gradient product per sequence -- and :func:`accelerate`, which swaps
its modules into a built model (``modules.py``). ``softalign.backend`` decides when.
Every fast piece is tested equal to the reference piece it replaces (tests/unit/test_backend.py).
"""

from softalign.fast.modules import accelerate, is_accelerated

__all__ = ["accelerate", "is_accelerated"]
