"""Sphinx configuration for the funksgd documentation."""

import funksgd

project = "funksgd"
author = "The funksgd developers"
copyright = "2026, The funksgd developers"
release = funksgd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
exclude_patterns = ["_build"]
intersphinx_mapping = {}
html_theme = "alabaster"
nitpicky = False
