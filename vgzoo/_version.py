"""The package version, in a module of its own so that nothing inside vgzoo imports the top-level package."""

__version__ = "0.2.0.dev0"
