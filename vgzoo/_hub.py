"""Weight sources: safetensors files, saved model folders (config.json + model.safetensors), the Hub.

Everything here reads and writes safetensors and JSON. A pickle (``.pth``, ``.bin``, ``.pt``) is read
only when the caller opts in, and then with ``torch.load(weights_only=True)``. Writes are atomic: a
crash mid-save never leaves a half-written file where a good one stood.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomic import atomic_write, atomic_write_json  # noqa: F401  (written through _hub by most callers)
from .errors import WeightsError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


# ----------------------------------------------------------------------------------------- writing
def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata=None) -> Path:
    """Write tensors to a safetensors file atomically (shared storage is copied, not refused)."""
    import torch
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for key, value in state_dict.items():
        t = value.detach()
        ptr = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else None
        if (ptr is not None and ptr in seen) or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        if ptr is not None:
            seen.add(ptr)
        tensors[key] = t.cpu()
    meta = {"format": "pt", **(metadata or {})}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


# ----------------------------------------------------------------------------------------- reading
def load_state_dict(path: str | os.PathLike, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` (or, with ``allow_pickle=True``, a torch pickle).

    Raises:
        WeightsNotFoundError: the file does not exist.
        WeightsError: the file is truncated or corrupt, or is a pickle and ``allow_pickle`` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file {str(path)!r} does not exist. Check the path.")
    if path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise WeightsError(
                f"{str(path)!r} is a pickle ({path.suffix}); vgzoo does not unpickle by default because a "
                "pickle can run code. If you trust the file, pass allow_pickle=True (CLI: --allow-pickle); "
                "it is then read with torch.load(weights_only=True). Better: convert it once to safetensors."
            )
        return _load_pickle(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"Cannot read {str(path)!r} as safetensors ({exc}). The file is truncated, corrupt or not a "
            "safetensors file; download or save it again."
        ) from exc


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]] | None:
    """The key -> shape table of a safetensors file, from its header alone (no tensor is read); ``None`` when the
    file is missing, a pickle, or has no readable header."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file() or path.suffix in PICKLE_SUFFIXES:
        return None
    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"Cannot read {str(path)!r} with torch.load(weights_only=True): {exc}") from exc
    # Training scripts often wrap the weights: {"state_dict": ...}, {"model": ...}.
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors).")
    return dict(obj)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a saved model's config.json."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{str(path)!r} does not exist: {str(directory)!r} is not a saved vgzoo model "
            "(expected config.json and model.safetensors, as written by vgzoo.save_pretrained)."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{str(path)!r} is not valid JSON ({exc}); save the model again.") from exc
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise WeightsError(f"{str(path)!r} has no 'architecture' field naming the vgzoo model to build.")
    if "config" not in config and "model_kwargs" in config:
        raise WeightsError(
            f"{str(path)!r} was written by vgzoo 0.1, which recorded only the keyword arguments passed "
            f"({config['model_kwargs']}), not the whole model config. Rebuild it once with vgzoo.create("
            f"{config['architecture']!r}, **those kwargs, checkpoint_path=FOLDER/model.safetensors) and "
            "save_pretrained it again."
        )
    if not isinstance(config.get("config"), dict):
        raise WeightsError(f"{str(path)!r}: 'config' must be a JSON object of the model's constructor arguments.")
    return config


def resolve_file_source(source: str) -> Path:
    """A default_cfg ``file`` entry: a path, or ``package:relative/path`` inside an installed package."""
    if os.path.exists(source) or ":" not in source or os.path.isabs(source):
        return Path(source)
    package, _, relative = source.partition(":")
    try:
        return Path(str(resources.files(package).joinpath(relative)))
    except ModuleNotFoundError as exc:
        raise WeightsNotFoundError(f"Weights resource {source!r}: package {package!r} is not installed.") from exc


def hf_hub_file(repo_id: str, filename: str, revision: str | None = None, local_only: bool = False) -> Path:
    """Fetch one file through the Hugging Face cache (honours HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_CACHE).

    ``local_only`` reads the cache alone (vgzoo's own offline setting). The requests run under vgzoo's
    connect/read timeouts (:func:`hub_limits`).
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    where = f"{repo_id}@{revision}" if revision else repo_id
    limits = hub_limits()
    unreachable = None if local_only else _unreachable_endpoint()
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision,
                                    local_files_only=local_only or unreachable is not None,
                                    etag_timeout=limits.read_timeout))
    except LocalEntryNotFoundError as exc:
        if unreachable:
            why = f"{unreachable}, so only the cache was read"
        elif local_only or constants.HF_HUB_OFFLINE:
            why = "VGZOO_OFFLINE" if local_only else "HF_HUB_OFFLINE"
            why = f"{why} is set, so only the cache was read"
        else:
            why = hub_error_text(exc.__cause__ or exc.__context__) or "no network"
        raise WeightsNotFoundError(
            f"{filename!r} of hf-hub:{where} ({hub_url(repo_id, filename, revision)}) is not in the local Hugging "
            f"Face cache and cannot be downloaded ({why}). "
            + ("Connect, or unset HF_HUB_OFFLINE and VGZOO_OFFLINE, or point HF_HUB_CACHE at a cache that holds it."
               if "cache was read" in why else
               "Try again later, check HF_ENDPOINT, or point HF_HUB_CACHE at a cache that holds the file.")
        ) from exc
    except (EntryNotFoundError, RepositoryNotFoundError) as exc:
        raise WeightsNotFoundError(f"hf-hub:{where} has no file {filename!r}: {exc}") from exc
    except Exception as exc:  # network and HTTP errors
        raise WeightsError(f"Cannot fetch {filename!r} from hf-hub:{where}: {hub_error_text(exc) or exc}") from exc


def hub_error_text(exc: BaseException | None) -> str | None:
    """A network or HTTP error of huggingface_hub in words (it raises httpx2 errors, which are not OSErrors), or
    None for anything else."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    from .download import network_limits

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return f"the Hub endpoint {endpoint} answered HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, httpx2.ConnectTimeout):
        return (f"cannot connect to the Hub endpoint {endpoint}: no answer to the connection within "
                f"{network_limits().connect_timeout:g} s (VGZOO_CONNECT_TIMEOUT)")
    if isinstance(exc, httpx2.TimeoutException):
        return (f"the Hub endpoint {endpoint} stopped answering: nothing arrived for "
                f"{network_limits().read_timeout:g} s (VGZOO_READ_TIMEOUT)")
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect to the Hub endpoint {endpoint} ({exc})"
    if isinstance(exc, httpx2.TransportError):
        return f"the connection to the Hub endpoint {endpoint} failed ({type(exc).__name__}: {exc})"
    return None


_LIMITS_APPLIED: list = []


def hub_limits():
    """Put vgzoo's connect/read timeouts (:func:`vgzoo.download.network_limits`) on huggingface_hub's requests.

    huggingface_hub's shared client has no timeout of its own (an upload to an endpoint that never answers waits
    for ever), so it is rebuilt through huggingface_hub's ``set_client_factory`` with them; the file downloads take
    the read timeout as ``HF_HUB_DOWNLOAD_TIMEOUT`` and ``etag_timeout`` unless those are set in the environment.
    Returns the limits.
    """
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    from .download import network_limits

    limits = network_limits()
    if _LIMITS_APPLIED == [limits]:
        return limits
    timeout = httpx2.Timeout(limits.read_timeout, connect=limits.connect_timeout)

    def client_factory():
        client = _http.default_client_factory()
        client.timeout = timeout
        return client

    _http.set_client_factory(client_factory)
    if not os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT"):
        constants.HF_HUB_DOWNLOAD_TIMEOUT = limits.read_timeout
    _LIMITS_APPLIED[:] = [limits]
    return limits


_REACHABLE: dict[tuple[str, int], str | None] = {}


def _unreachable_endpoint() -> str | None:
    """Why the Hub endpoint cannot be reached (None when it can), probed once per process.

    huggingface_hub retries a refused endpoint with back-off for about 25 s, and one that never answers for minutes
    (six tries of 60 s), before it falls back to the cache. One request to the endpoint's root under vgzoo's timeouts
    tells the same in a second or two: any HTTP answer, an error status included, means it is there. With a proxy
    configured the probe is skipped.
    """
    from urllib.parse import urlsplit

    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE or any(os.environ.get(k) for k in (
            "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    url = urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    if (host, port) in _REACHABLE:
        return _REACHABLE[(host, port)]
    hub_limits()
    try:
        get_session().head(f"{url.scheme}://{url.netloc}/", follow_redirects=False)
        why = None
    except Exception as exc:  # httpx2's transport errors, which are not OSErrors
        why = hub_error_text(exc)
        if why is None:
            raise
        why = why.replace(f"the Hub endpoint {endpoint}", f"the Hub endpoint {url.scheme}://{url.netloc}")
        if why.startswith("cannot connect"):
            why = f"the Hub endpoint {url.scheme}://{url.netloc} is unreachable: {why}"
    _REACHABLE[(host, port)] = why
    return why


def hub_url(repo_id: str, filename: str, revision: str | None = None) -> str:
    """The download URL of a Hub file (``HF_ENDPOINT`` respected)."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, filename, revision=revision)


def parse_hub_id(spec: str) -> tuple[str, str | None]:
    """``org/repo[@revision]`` -> (repo_id, revision)."""
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise WeightsError(f"hf-hub:{spec!r} is not of the form 'org/repo[@revision]'.")
    return repo_id, revision or None


# -------------------------------------------------------------------------------- loading a model
def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt a first conv's weight (O, I, kh, kw) to ``in_chans`` inputs, as timm does.

    One input channel sums the RGB filters; more channels repeat them and rescale so activations
    keep their magnitude.
    """
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def adapt_head_and_stem(state_dict: dict, model, cfg: Mapping[str, Any]) -> dict:
    """Drop a classifier whose class count differs and adapt a stem conv whose channel count differs.

    ``cfg['classifier']`` and ``cfg['first_conv']`` name the module prefixes (strings or lists), as in
    timm. Each change is reported with a warning; everything else is left for the strict load.
    """
    own = model.state_dict()

    def prefixes(key: str) -> list[str]:
        value = cfg.get(key) or []
        return [value] if isinstance(value, str) else list(value)

    for prefix in prefixes("classifier"):
        for suffix in ("weight", "bias"):
            k = f"{prefix}.{suffix}"
            if k in state_dict and k in own and state_dict[k].shape != own[k].shape:
                warnings.warn(
                    f"Checkpoint {k} has shape {tuple(state_dict[k].shape)}, the model {tuple(own[k].shape)} "
                    "(another num_classes): the classifier is re-initialised, train it before use.",
                    stacklevel=3,
                )
                state_dict[k] = own[k]
    for prefix in prefixes("first_conv"):
        k = f"{prefix}.weight"
        if k in state_dict and k in own and state_dict[k].ndim == 4 and state_dict[k].shape != own[k].shape:
            w = state_dict[k]
            if w.shape[0] == own[k].shape[0] and w.shape[2:] == own[k].shape[2:]:
                warnings.warn(
                    f"Checkpoint {k} takes {w.shape[1]} input channels, the model {own[k].shape[1]}: the "
                    "first conv is adapted (summed for 1 channel, repeated and rescaled otherwise).",
                    stacklevel=3,
                )
                state_dict[k] = adapt_input_conv(w, own[k].shape[1]).to(w.dtype)
    return state_dict


def load_into(model, state_dict: dict, source: str, checkpoint_filter=None, strict: bool = True) -> None:
    """Pass ``state_dict`` through the model's filter and head/stem adaptation, then load it.

    Strict loading names every missing key, unexpected key and shape mismatch in one WeightsError.
    """
    state_dict = fitted_state_dict(model, state_dict, checkpoint_filter)
    own = model.state_dict()
    arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
    check_fit({k: v.shape for k, v in own.items()}, state_dict, source, arch, strict=strict)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=strict)


def fitted_state_dict(model, state_dict: dict, checkpoint_filter=None) -> dict:
    """``state_dict`` as the model takes it: through the model's filter (foreign layouts, resampled position
    embeddings) and the head/stem adaptation. Works on meta tensors too, so shapes can be checked first."""
    if checkpoint_filter is not None:
        state_dict = checkpoint_filter(dict(state_dict), model)
    return adapt_head_and_stem(dict(state_dict), model, getattr(model, "pretrained_cfg", {}))


def check_fit(own: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Any], source: str, arch: str,
              strict: bool = True) -> None:
    """Raise one WeightsError naming every shape mismatch (and, when strict, missing and unexpected key).

    ``own`` maps the model's keys to their shapes, so a model built on the meta device can be checked before
    anything is allocated at the checkpoint's size.
    """
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k])}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k])
    ]
    problems = []
    if mismatched:
        problems.append(f"shape mismatches: {_shorten(mismatched)}")
    if strict and missing:
        problems.append(f"missing keys: {_shorten(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {_shorten(unexpected)}")
    if problems:
        raise WeightsError(
            f"Weights from {source} do not fit {arch}: " + "; ".join(problems) + ". Check that the "
            "checkpoint was made for this architecture and these kwargs."
        )


def _shorten(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
