"""Publishing a model to the Hugging Face Hub: ``vgzoo.push_to_hub`` and ``vgzoo push``.

A folder is pushed only after ``vgzoo.create("local-dir:FOLDER")`` has rebuilt the model from it, so what lands
on the Hub is something ``vgzoo.create("hf-hub:ORG/REPO")`` can load. The upload goes through huggingface_hub
(``create_repo`` + ``upload_folder``) with the token from the usual places (``token=``, ``HF_TOKEN``, the token
file written by ``hf auth login``); vgzoo never prints it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._hub import CONFIG_NAME, WEIGHTS_NAME, parse_hub_id
from ..errors import VgzooError, WeightsError, WeightsNotFoundError

# Hidden files (a crashed save's ``.model.safetensors.*.tmp``, editor files, .git) never go to the Hub.
IGNORE_PATTERNS = [".*", "**/.*", "*.tmp"]


class PushError(VgzooError, RuntimeError):
    """The Hub refused or failed an upload (no token, no write access, a network error)."""


@dataclass
class PushResult:
    """Where a push went."""

    repo_id: str
    url: str
    commit: str | None
    revision: str
    folder: Path


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """The saved-model folder behind ``path``: the folder itself, or ``PATH/final`` for a training run folder.

    Raises:
        WeightsNotFoundError: ``path`` is neither a saved model (config.json + model.safetensors) nor a run
            with a final model.
    """
    text = str(path)
    if text.startswith("local-dir:"):
        text = text[len("local-dir:") :]
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"{str(folder)!r} is not a folder. Expected a folder written by vgzoo.save_pretrained (config.json + "
            "model.safetensors) or a training run folder (vgzoo train --out RUN, which holds RUN/final)."
        )
    if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file():
        return folder
    if (folder / "final" / CONFIG_NAME).is_file():
        return folder / "final"
    raise WeightsNotFoundError(
        f"{str(folder)!r} holds no saved model: expected config.json and model.safetensors (vgzoo.save_pretrained), "
        "or final/ inside a training run folder. A run that stopped early has no final model yet: finish it with "
        "`vgzoo train ... --resume`."
    )


def _load_checked(folder: Path):
    """Rebuild the model from ``folder``: a folder that does not load is not pushed."""
    from .._factory import create

    try:
        return create(f"local-dir:{folder}")
    except Exception as exc:
        raise WeightsError(
            f"refusing to push {str(folder)!r}: vgzoo.create('local-dir:{folder}') fails, so nobody could load it "
            f"from the Hub either ({' '.join(str(exc).split())}). Save the model again with vgzoo.save_pretrained."
        ) from exc


def _resolve_token(token: str | None) -> str:
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise PushError(
            "no Hugging Face token: pushing needs one with write access. Set HF_TOKEN, run `hf auth login`, or "
            "pass token= (vgzoo never prints it)."
        )
    return found


def push_to_hub(
    model_or_folder: Any,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    *,
    commit_message: str | None = None,
    overwrite_card: bool = False,
) -> PushResult:
    """Upload a model (or a saved folder, or a training run's final model) to ``repo_id`` on the Hub.

    Args:
        model_or_folder: a model built by ``vgzoo.create`` (saved to a temporary folder first), a folder written by
            ``vgzoo.save_pretrained``, or a run folder of ``vgzoo train`` (its ``final/`` is pushed).
        repo_id: ``org/name`` (``hf-hub:`` in front is accepted); created if missing, kept if it exists.
        private: create the repository private (an existing repository keeps its visibility).
        revision: the branch to commit to (created from the default branch if missing); default ``main``.
        token: a Hub token; default: ``HF_TOKEN`` or the token saved by ``hf auth login``.
        commit_message: the commit's summary.
        overwrite_card: replace a README.md that the user wrote with the generated model card.

    Raises:
        WeightsError: the folder does not load with ``vgzoo.create("local-dir:...")``.
        PushError: no token, or the Hub refused the upload.
    """
    from torch import nn

    from .card import CARD_NAME, is_generated_card, write_model_card

    repo_id, at_revision = parse_hub_id(repo_id[len("hf-hub:") :] if repo_id.startswith("hf-hub:") else repo_id)
    revision = revision or at_revision
    with tempfile.TemporaryDirectory(prefix="vgzoo-push-") as tmp:
        if isinstance(model_or_folder, nn.Module):
            from .card import save_pretrained

            folder = Path(tmp) / "model"
            save_pretrained(model_or_folder, folder)
            model = _load_checked(folder)
        else:
            folder = resolve_model_dir(model_or_folder)
            model = _load_checked(folder)
        token = _resolve_token(token)  # after the folder check: a broken folder is reported first
        card = folder / CARD_NAME
        ours = card.is_file() and is_generated_card(card.read_text(encoding="utf-8", errors="replace"))
        if overwrite_card or not card.is_file() or ours:
            write_model_card(model, folder, overwrite=True, repo_id=repo_id)  # the card names the repository
        return _upload(folder, repo_id, private=private, revision=revision, token=token,
                       commit_message=commit_message or f"Upload {model.pretrained_cfg.get('architecture')} with vgzoo")


def _upload(folder: Path, repo_id: str, *, private: bool, revision: str | None, token: str,
            commit_message: str) -> PushResult:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .._hub import hub_error_text, hub_limits

    hub_limits()
    api = HfApi(token=token)
    where = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
                                 commit_message=commit_message, ignore_patterns=list(IGNORE_PATTERNS))
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = {401: "the token is invalid or expired", 403: "the token has no write access to this namespace",
                404: "the repository or namespace does not exist"}.get(status, "see the Hub's message")
        raise PushError(f"pushing {str(folder)!r} to {where} failed ({hint}): {_scrub(str(exc), token)}") from None
    except OSError as exc:  # a file that cannot be read
        raise PushError(f"pushing to {where} failed: {_scrub(str(exc), token)}.") from None
    except Exception as exc:  # huggingface_hub's network errors are httpx2's, not OSErrors
        why = hub_error_text(exc)
        if why is None:
            raise
        raise PushError(f"pushing to {where} failed: {_scrub(why, token)}. Check the network and HF_ENDPOINT; "
                        "the timeouts are VGZOO_CONNECT_TIMEOUT and VGZOO_READ_TIMEOUT.") from None
    return PushResult(repo_id=repo_id, url=str(url), commit=getattr(info, "oid", None), revision=revision or "main",
                      folder=folder)


def _scrub(message: str, token: str) -> str:
    """A message never shows the token, even if a server echoed it."""
    return message.replace(token, "***") if token else message
