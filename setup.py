"""Build the compiled loops ``funksgd._sgd`` (and ``_sgd_avx2``); metadata is in pyproject.toml."""

import os
import platform
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.errors import CompileError, LinkError
from setuptools._distutils.sysconfig import customize_compiler

# -fassociative-math lets GCC vectorise the dot-product reduction; the result is still
# bit-identical from run to run for a given binary. No -ffast-math: it would break isfinite.
COMPILE_ARGS = [
    "-O3",
    "-fno-math-errno",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-fno-trapping-math",
]
if os.environ.get("FUNKSGD_NATIVE") == "1":  # local builds only: not portable in a wheel
    COMPILE_ARGS.append("-march=native")


def openmp_flags():
    """Return the OpenMP compile flag if the compiler accepts it, else ``[]`` (serial build)."""
    if sys.platform == "win32":
        return ["/openmp"]
    code = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "check_openmp.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, os.path.join(tmp, "a"), extra_postargs=["-fopenmp"])
        except (CompileError, LinkError):
            print(
                textwrap.dedent("""
                WARNING: the C compiler does not support OpenMP; funksgd is built single-threaded
                and n_jobs > 1 will warn and run on one thread."""),
                file=sys.stderr,
            )
            return []
    return ["-fopenmp"]


def builds_avx2():
    """Whether to add the AVX2 + FMA build of the loops (x86-64 with GCC or Clang)."""
    compiler = new_compiler()
    return (
        platform.machine().lower() in ("x86_64", "amd64")
        and compiler.compiler_type == "unix"
        and os.environ.get("FUNKSGD_NATIVE") != "1"  # -march=native covers it
    )


def extension(name, extra_args):
    return Extension(
        f"funksgd.{name}",
        [f"funksgd/{name}.pyx"],
        depends=["funksgd/_rows.h", "funksgd/_solve.pxi"],
        include_dirs=[np.get_include()],
        extra_compile_args=COMPILE_ARGS + extra_args + omp,
        extra_link_args=omp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )


omp = openmp_flags()
extensions = [extension("_sgd", [])]
if builds_avx2():  # chosen at import time when the CPU has AVX2 (funksgd/_kernels.py)
    extensions.append(extension("_sgd_avx2", ["-mavx2", "-mfma"]))
setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
