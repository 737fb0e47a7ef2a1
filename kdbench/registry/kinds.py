"""What a component of each kind must be: one table, checked when a plugin registers a component.

A kind whose flags and hooks the harness reads off the factory (a method's ``uses_teacher``, an
estimator's ``higher_to_teacher``, ...) has a base class in ``kdbench.contracts``, and its factory must
be a subclass of it: the harness then reads those attributes directly, with the defaults declared once,
on the base class. A kind whose factory may be a plain function (models, datasets, executors) must be
callable; a factory class must define what its kind's protocol calls (an executor's ``run``), and an
optional attribute it carries (a model's ``published_weights``, a dataset's ``missing_data``) must be callable.

A component that does not fit fails at registration, before anything is planned or trained, with one
line naming the plugin, the component and what it should be.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kdbench.contracts.estimators import DataValueEstimator
from kdbench.contracts.loggers import RunLogger
from kdbench.contracts.methods import DistillationMethod
from kdbench.contracts.models import PublishedWeights
from kdbench.contracts.revisions import LabelRevision


@dataclass(frozen=True)
class KindContract:
    """What the factory of one component kind must be."""

    #: What a factory is, in words, for the message when it is not.
    needs: str
    #: The class every factory must subclass; None: any callable (a function or a class).
    base: type | None = None
    #: Methods a factory *class* must define (a protocol's, checked by name; a function is only called).
    members: tuple[str, ...] = ()
    #: Attributes a factory may carry, with what each is; where one is there and not None, it must be callable.
    optional: tuple[tuple[str, str], ...] = ()


#: Component kind → its contract; every kind of ``kdbench.contracts.hookspecs.KINDS`` has one.
CONTRACTS: Mapping[str, KindContract] = MappingProxyType(
    {
        "method": KindContract("a DistillationMethod subclass", base=DistillationMethod),
        "estimator": KindContract("a DataValueEstimator subclass", base=DataValueEstimator),
        "revision": KindContract("a LabelRevision subclass", base=LabelRevision),
        "model": KindContract(
            "a function or class: factory(num_classes) -> nn.Module",
            optional=(("published_weights", "a function: weights name -> URL"),),
        ),
        "dataset": KindContract(
            "a function or class: factory(*, root, download, **params) -> ImageDataset or StreamedDataset",
            optional=(("missing_data", "a function: (*, root, download, **params) -> the line its loader would stop "
                       "with, or None"),),
        ),
        "executor": KindContract(
            "a function or class: factory(**params) -> an object with run(jobs, make_worker)", members=("run",)
        ),
        "logger": KindContract("a RunLogger subclass", base=RunLogger),
    }
)


def describe_factory(factory: object) -> str:
    """A factory in a few words: ``class HalfCE``, ``function make_data``, ``an instance of HalfCE``."""
    name = getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None)
    if inspect.isclass(factory):
        return f"class {name}"
    if inspect.isroutine(factory) and name:
        return f"function {name}"
    text = repr(factory) if isinstance(factory, str | int | float | bool | type(None)) else ""
    return text[:40] if text else f"an instance of {type(factory).__qualname__}"


def contract_problem(kind: str, factory: object) -> str | None:
    """What is wrong with ``factory`` as a component of ``kind``, completing "X is <factory>, ..."; None: it fits."""
    contract = CONTRACTS[kind]
    if contract.base is not None:
        if not (inspect.isclass(factory) and issubclass(factory, contract.base)):
            return f"which is not a subclass of kdbench.contracts.{contract.base.__name__}"
    elif not callable(factory):
        return f"which is not callable: a {kind} is {contract.needs}"
    if inspect.isclass(factory):
        for member in contract.members:
            if not callable(getattr(factory, member, None)):
                return f"which has no {member}() method: a {kind} is {contract.needs}"
    for attribute, what in contract.optional:
        value = getattr(factory, attribute, None)
        if value is not None and not callable(value):
            return f"whose {attribute} is not callable: a {kind}'s {attribute} is {what}"
    return None


def published_weights_of(factory: Callable[..., Any]) -> PublishedWeights | None:
    """A model factory's ``published_weights`` (checked callable at registration), or None."""
    published: PublishedWeights | None = getattr(factory, "published_weights", None)
    return published
