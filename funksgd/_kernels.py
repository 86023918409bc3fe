"""The compiled loops for this CPU.

``_sgd.pyx`` is built twice: ``_sgd`` for any CPU of the platform (SSE2 on x86-64)
and, on x86-64 with GCC or Clang, ``_sgd_avx2`` with AVX2 and FMA instructions,
about 1.5x faster. ``sgd`` is the AVX2 build when the CPU runs it, else the
portable one; ``FUNKSGD_KERNEL=generic`` (or ``avx2``) in the environment forces
a choice. The two builds round differently, so their results differ in the last
bits; for a given build, results do not depend on ``n_jobs``.
"""

import os

from . import _sgd as generic

try:
    from . import _sgd_avx2 as avx2
except ImportError:  # not built on this platform
    avx2 = None


def _choose():
    wanted = os.environ.get("FUNKSGD_KERNEL", "")
    if wanted not in ("", "generic", "avx2"):
        raise ValueError(f"FUNKSGD_KERNEL must be 'generic' or 'avx2', got {wanted!r}.")
    if wanted == "generic" or avx2 is None or not generic.cpu_has_avx2_fma():
        if wanted == "avx2":
            raise ValueError("FUNKSGD_KERNEL=avx2, but that build is missing or the CPU lacks it.")
        return generic
    return avx2


sgd = _choose()
