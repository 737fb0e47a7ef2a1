"""Built-in distillation methods, one module each: CE (from scratch), KD, MSE-KD, DKD, CTKD, DTD-LA,
FitNet, PKT, VID, SRRL, SemCKD and CRD. A new built-in method is one new file in this folder."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_methods", register)
