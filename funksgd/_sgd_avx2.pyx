# cython: language_level=3
"""The loops of ``_sgd.pyx`` compiled for CPUs with AVX2 and FMA (see ``_kernels.py``)."""

include "_sgd.pyx"
