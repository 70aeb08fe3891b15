"""Sphinx configuration of the torchgeo-satclip documentation."""

import torchgeo_satclip

project = 'torchgeo-satclip'
author = 'torchgeo-satclip developers'
copyright = '2026, torchgeo-satclip developers'
release = torchgeo_satclip.__version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
exclude_patterns = ['_build']
myst_heading_anchors = 3

autodoc_typehints = 'description'
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'sphinx_rtd_theme'
