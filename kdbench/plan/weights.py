"""Published teacher weights by name (``teacher: imagenet_resnet34, weights: IMAGENET1K_V1``).

The model plugin says where its weights are published (``published_weights(name) -> url``); the file is
looked for where torch keeps downloaded weights, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME``). It
is never downloaded unless asked (``--download``): a missing file is one line saying what to put where.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdbench.errors import KdbenchError

if TYPE_CHECKING:
    from kdbench.registry import Component


def weights_location(model: Component[Callable[..., Any]], weights: str, where: str) -> tuple[Path, str]:
    """(file in the torch hub cache, URL it is published at) of ``model``'s weights ``weights``."""
    import torch

    published = model.published_weights
    if published is None:
        raise KdbenchError(f"{where}: model {model.name!r} names no published weights; give a checkpoint instead")
    try:
        url = published(weights)
    except KeyError as exc:
        raise KdbenchError(f"{where}: {exc.args[0]}") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def missing_file_message(where: str, model: str, weights: str, path: Path, url: str) -> str:
    return (
        f"{where}: weights {weights} of {model} are not in the torch hub cache: put {path.name} "
        f"(published at {url}) at {path}, or run again with --download"
    )


def download(path: Path, url: str) -> None:
    """Fetch published weights into the torch hub cache (torchvision's files carry a hash prefix)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem.rsplit("-", 1)
    prefix = stem[1] if len(stem) == 2 else None
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=True)
    except Exception as exc:  # no network, a proxy, a wrong hash
        raise KdbenchError(f"could not download {url} to {path}: {type(exc).__name__}: {exc}") from None
