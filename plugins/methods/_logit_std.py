"""Logit standardization (LS; Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024) as the
``logit_std`` option of ``kd``, ``dkd`` and ``ctkd`` (docs/methods.md, LS).

The Z-score itself is ``kdbench.contracts.standardize_logits``, which any plugin may call. This helper keeps
the option out of a run's key while it is off: a method's resolved parameters are hashed into its run key,
so ``logit_std: false`` (the default) is left out of them and every run keyed before the option existed
keeps its key; ``logit_std: true`` is kept and keys the run apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The official "+Ours" settings (tools/train.py of sunshangquan/logit-standardization-KD: ``--base-temp 2
#: --kd-weight 9``): KD at base temperature 2 with KD weight 9 (CE 0.1); DKD at T 2 with α and β multiplied
#: by 9; CTKD with KD weight 9. With ``logit_std`` a temperature or weight left unset takes these values
#: (:func:`unset`); one the suite gives is kept.
LS_BASE_TEMPERATURE = 2.0
LS_KD_WEIGHT = 9.0


def unset(value: float | None, plain: float, standardized: float, logit_std: bool) -> float:
    """A parameter whose default depends on ``logit_std``: ``value`` when given, else the plain method's
    default or the LS one."""
    if value is not None:
        return float(value)
    return standardized if logit_std else plain


def without_default_logit_std(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` less ``logit_std`` when it is off (absent from a key = its default, False)."""
    return {k: v for k, v in params.items() if not (k == "logit_std" and v is False)}


def with_ls_defaults(params: Mapping[str, Any], defaults: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """``params`` with each parameter of ``defaults`` (name → (plain default, LS default)) filled in when unset,
    by whether ``logit_std`` is on, and ``logit_std`` left out while it is off: a method's resolved parameters,
    so its run key holds what trained."""
    ls = bool(params.get("logit_std", False))
    filled = {name: unset(params.get(name), plain, standardized, ls)
              for name, (plain, standardized) in defaults.items()}
    return without_default_logit_std({**params, **filled})
