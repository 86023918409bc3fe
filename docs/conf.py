"""Sphinx configuration for the funksgd documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (what ``.ci/run``
does). The build needs no network: MathJax is served from a copy installed from PyPI, the
gallery runs on generated ratings, and references to other projects are not linked.
"""

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np

import funksgd
from funksgd import train_test_split_ratings
from funksgd.datasets import make_ratings

project = "funksgd"
author = "The funksgd developers"
copyright = "2026, The funksgd developers"
release = funksgd.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxcontrib.programoutput",
]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**.zip"]
templates_path = ["_templates"]

# ----------------------------------------------------------------------------- API reference
# Every public class gets a page with its methods (docs/_templates/autosummary/class.rst):
# the table at the top links to each method's own entry below it.
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods instead
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
toc_object_entries_show_parents = "hide"  # "fit()" in a page's contents, not "FunkSVD.fit()"


def skip_metadata_request_setters(app, what, name, obj, skip, options):
    """Leave out the set_*_request methods scikit-learn generates for metadata routing.

    Their docstrings are scikit-learn's and refer to its own user guide; the class template
    names them instead.
    """
    return True if re.fullmatch(r"set_\w+_request", name) else None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_request_setters)


# A broken cross-reference fails the build. Only other projects' objects are exempt: there
# is no network to fetch their inventories (intersphinx), so they are shown unlinked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|numpy|np|scipy|pandas|pd|matplotlib|joblib|pickle|dask|tqdm)(\..*)?"),
]

# ----------------------------------------------------------------------------- math offline
# MathJax 3 from the sphinx-mathjax-offline wheel, copied into _static/mathjax. The SVG output
# needs no web fonts, so equations render even from file:// pages.
_mathjax = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax is None:
    raise ImportError("pip install 'funksgd[docs]': sphinx-mathjax-offline serves MathJax")
html_static_path = ["_static", str(Path(_mathjax.origin).parent / "static")]
mathjax_path = "mathjax/tex-svg.js"

# ----------------------------------------------------------------------------- theme
html_theme = "pydata_sphinx_theme"
html_title = f"funksgd {release}"
html_css_files = ["funksgd.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 4,
    "secondary_sidebar_items": {
        "**": ["page-toc"],
        "auto_examples/index": [],
    },
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# Long pages read best wide: no left sidebar on the guides and the gallery examples (each
# example links to the next); the API pages keep theirs, the list of every object.
html_sidebars = {
    "index": [],
    "user_guide": [],
    "ratings_files": [],
    "training": [],
    "guarantees": [],
    "architecture": [],
    "auto_examples/*": [],
}
html_show_sourcelink = False

# ----------------------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("funksgd",),
    "reference_url": {"funksgd": None},
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "min_reported_time": 1,
    # FUNKSGD_DOCS_NO_GALLERY=1 skips running the examples, for quick edits of the text only.
    "plot_gallery": "False" if os.environ.get("FUNKSGD_DOCS_NO_GALLERY") else "True",
    "matplotlib_animations": False,
    "show_signature": False,
}


# ----------------------------------------------------------------------------- command line
# docs/ratings_files.rst runs the ``funksgd`` command on small generated files, written here
# at every build, so the outputs shown are those of the installed command.
CLI_DEMO = Path(__file__).resolve().parent / "_build" / "cli-demo"


def write_cli_demo(folder):
    """ratings.csv, test.csv and movies.csv, MovieLens-style, from generated ratings."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    X = make_ratings(n_users=1000, n_items=400, n_ratings=30_000, random_state=0)
    X_train, X_test = train_test_split_ratings(X, test_size=0.1, random_state=0)
    for name, part in [("ratings.csv", X_train), ("test.csv", X_test)]:
        coo = part.tocoo()
        timestamps = 880_000_000 + 37 * np.arange(coo.nnz)
        lines = [
            f"{user + 1},{10 * (item + 1)},{rating:g},{time}"
            for user, item, rating, time in zip(coo.row, coo.col, coo.data, timestamps, strict=True)
        ]
        (folder / name).write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines) + "\n")
    titles = [f'{10 * j},"Movie {j:03d}, The ({1950 + j % 70})",Drama' for j in range(1, 401)]
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(titles) + "\n")


write_cli_demo(CLI_DEMO)
os.environ["FUNKSGD_CACHE_DIR"] = str(CLI_DEMO / "cache")  # not the reader's ~/.cache
# the ``funksgd`` command of the Python running Sphinx, even from a virtualenv not activated
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
programoutput_prompt_template = "$ {command}\n{output}"

# ----------------------------------------------------------------------------- link check
# ``sphinx-build -b linkcheck`` (in .ci/run) checks that the links to files inside the docs
# exist; there is no network, so links to web sites are not followed. Cross-references
# (:doc:, :ref:, :meth: ...) are checked by the HTML build itself (nitpicky, -W).
linkcheck_ignore = [r"https?://.*"]
