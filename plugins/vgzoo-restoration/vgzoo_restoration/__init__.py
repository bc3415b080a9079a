"""vgzoo-restoration: image restoration as a GAN (Pathak et al. 2016, Context Encoders), as a vgzoo plugin.

vgzoo finds ``restoration_unet`` through this distribution's ``vgzoo.models`` entry point; importing
this package is not needed to use it.
"""

__version__ = "0.1.0"
