"""The model contract: one forward signature for every architecture, and what the harness reads off it.

A model plugin's factory takes ``num_classes`` and returns an ``nn.Module`` whose ``forward(x,
features=False)`` gives logits, and with ``features=True`` gives ``(feats, logits)`` where ``feats =
[stem, stage1, ..., stageK, pooled]`` (docs/methods.md §2). Feature methods size their extra modules
from :func:`feature_shapes`; SRRL and data selection read the classifier through :func:`classifier_of`.

A model may also take ``preact`` (``forward(x, features=True, preact=True)``): the stage entries are then
taken before the stage's final activation (RepDistiller's ``preact`` features), with the same shapes; the
stem, the pooled vector and the logits do not change. Only a method that asks for it
(``DistillationMethod.student_preact`` / ``teacher_preact``, e.g. ReviewKD's teacher) calls a model so,
through :func:`forward_features`; a model without the keyword fails then with one line at setup.

A factory may also carry ``published_weights``: a function from a weights name (``IMAGENET1K_V1``) to the
URL of a state dict that fits the model. A suite's pair then names ``weights:`` instead of a checkpoint,
and the file is read from the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import torch
from torch import nn

from kdbench.errors import KdbenchError

#: ``forward(x)`` returns logits; ``forward(x, features=True)`` returns ``(feats, logits)``.
ModelOutput: TypeAlias = torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]

#: A model factory's optional ``published_weights``: weights name → URL of its state dict; a ``KeyError`` with a
#: one-line message for a name the model does not publish. The registry checks it is callable and hands it on
#: as ``Component.published_weights``.
PublishedWeights: TypeAlias = Callable[[str], str]

_HEAD_NAMES = ("fc", "classifier", "linear")


def classifier_of(model: nn.Module) -> nn.Linear:
    """The final linear layer of a zoo model, whatever its attribute is called.

    Methods that read or replace the head (e.g. to get the class-embedding weights) use this instead of
    knowing that ResNets say ``fc``, VGG ``classifier``, ShuffleNets ``linear`` and MobileNetV2
    ``classifier[0]``.
    """
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Sequential):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            if linears:
                return linears[-1]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise KdbenchError(f"{type(model).__name__} has no nn.Linear classifier")
    return linears[-1]


def forward_features(
    model: nn.Module, x: torch.Tensor, *, preact: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``model(x, features=True)``, or with ``preact=True`` the stage entries before their final activation.

    The keyword reaches the model only when it is asked for, so a model without it still serves every method
    that takes the usual features.
    """
    out: tuple[list[torch.Tensor], torch.Tensor] = (
        model(x, features=True, preact=True) if preact else model(x, features=True)
    )
    return out


def feature_shapes(
    model: nn.Module, image_size: int = 32, channels: int = 3, *, preact: bool = False
) -> list[tuple[int, ...]]:
    """Per-sample shapes (no batch dimension) of ``model(x, features=True)[0]`` (with ``preact=True``: of the
    pre-activation features, which also checks that the model gives them).

    Found by a dry forward of a batch of 2 in eval mode without gradients, on the model's own device and
    dtype; the model's train/eval mode is restored afterwards, so this is safe mid-training.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(2, channels, image_size, image_size, device=device, dtype=dtype)
            try:
                feats, _ = forward_features(model, x, preact=preact)
            except TypeError as error:
                if not preact or "preact" not in str(error):
                    raise
                raise KdbenchError(
                    f"{type(model).__name__} gives no pre-activation features (forward(x, features=True, "
                    "preact=True)), which this method needs"
                ) from None
    finally:
        model.train(was_training)
    return [tuple(f.shape[1:]) for f in feats]
