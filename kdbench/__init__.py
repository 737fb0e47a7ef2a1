"""kdbench: a benchmark harness for knowledge distillation.

Public API::

    import kdbench
    method = kdbench.get("method", "kd", T=2.0)
    model = kdbench.create_model("resnet8x4", num_classes=100)

Plugins implement the contracts in ``kdbench.contracts``; ``docs/design.md`` maps the layers.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get(kind: str, name: str, /, **params: Any) -> Any:
    """A configured component of ``kind`` (method, estimator, revision, model, dataset, executor).

    Parameters are validated against the component's signature; context parameters (a model's
    ``num_classes``, a dataset's ``root``/``download``) are passed through.
    """
    from kdbench.registry import CONTEXT_PARAMETERS, load_registry

    component = load_registry().get(kind, name)
    context_names = CONTEXT_PARAMETERS.get(kind, frozenset())
    context = {k: v for k, v in params.items() if k in context_names}
    user = {k: v for k, v in params.items() if k not in context_names}
    return component.create(user, **context)


def create_model(name: str, num_classes: int = 100) -> Any:
    """A zoo model by name, e.g. ``create_model("resnet32x4", num_classes=100)``."""
    return get("model", name, num_classes=num_classes)
