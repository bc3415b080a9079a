"""template_pkg: a vgzoo plugin. vgzoo finds its models through the vgzoo.models entry points in pyproject.toml."""

__version__ = "0.1.0"
