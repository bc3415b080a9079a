"""vgzoo-stylegan2: StyleGAN2-ADA (Karras et al. 2020) as a vgzoo plugin.

vgzoo finds the models, tags, converter and training task through this distribution's entry points;
importing this package is not needed to use them (``vgzoo.create("stylegan2")`` imports
:mod:`vgzoo_stylegan2.model`).
"""

__version__ = "0.1.0"
