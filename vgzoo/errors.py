"""Exception types of vgzoo.

Every error a user can cause subclasses :class:`VgzooError` and the matching builtin, so callers can
catch either ``vgzoo.VgzooError`` or the builtin they already expect (``KeyError`` for an unknown name,
``ValueError`` for bad weights, ...).
"""

from __future__ import annotations


class VgzooError(Exception):
    """Base class of every error vgzoo raises on purpose."""


class UnknownModelError(VgzooError, KeyError):
    """A model name that no installed distribution provides."""

    def __str__(self) -> str:  # KeyError would repr() the message; show it as written
        return str(self.args[0]) if self.args else ""


class PluginError(VgzooError, ImportError):
    """A plugin (or built-in) entry point that cannot be loaded, or two distributions claiming one name."""


class WeightsError(VgzooError, ValueError):
    """Weights or a saved model that cannot be read, found or loaded into the model."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weights file, config.json or Hub file that does not exist."""


class DataError(VgzooError, ValueError):
    """A dataset that cannot be used: an unreadable image, a wrong size, a bad split or option."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset folder that does not exist or holds no images."""


class NonFiniteOutputError(VgzooError, ValueError):
    """Model outputs holding NaN or infinite values, refused before they are scored or saved as images."""


class InputSizeError(VgzooError, ValueError):
    """An image whose height or width a network cannot process (e.g. not a multiple of its stride)."""


class DownloadError(VgzooError, OSError):
    """A download that failed (HTTP error, no connection, truncated body) or a cached file that changed since."""


class OfflineError(DownloadError, FileNotFoundError):
    """A file that is not in the cache while ``VGZOO_OFFLINE=1`` forbids the network."""


class DeviceError(VgzooError, ValueError):
    """A device that does not exist here (``--device cuda`` without CUDA, ``cuda:3`` on a 1-GPU machine)."""


class InputChannelsError(VgzooError, ValueError):
    """An image batch whose channel count is not the one the network was built for."""


class TrainingError(VgzooError, RuntimeError):
    """Training stopped on purpose: NaN/Inf losses, a configuration that cannot train, a broken resume."""
