"""Exact KNN-Shapley data values (Jia et al. 2019; docs/methods.md §6a)."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, hookimpl
from kdbench.errors import KdbenchError

from ._checks import VAL_MISSING, positive_int, split_checked
from ._shapley import knn_shapley


class KnnShapley(DataValueEstimator):
    """Exact KNN-Shapley (Jia et al. 2019) on the teacher's penultimate features, Euclidean distance.

    Value of a training sample = its mean Shapley value over validation points for the K-NN utility
    (fraction of the K nearest with the right label). Higher → teacher.
    """

    higher_to_teacher = True
    suspect_when = "low"  # a sample whose neighbours disagree with its label has a low (negative) value
    needs_validation = True

    def __init__(self, k: int = 5) -> None:
        self.k = positive_int("k", k, "knn-shapley")

    def score(self, inputs: ScoringInputs) -> Scores:
        if inputs.val is None:
            raise KdbenchError(f"knn-shapley {VAL_MISSING}")
        train = split_checked(inputs.train, "knn-shapley train split")
        val = split_checked(inputs.val, "knn-shapley val split")
        if val.features.shape[1] != train.features.shape[1]:
            raise KdbenchError("knn-shapley: train and validation features have different widths")
        values = knn_shapley(train.features, train.labels, val.features, val.labels, k=self.k)
        info = {"k": self.k, "distance": "euclidean", "num_val": val.num_samples}
        return Scores(values=values, info=info)


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("knn-shapley", KnnShapley, version="1")
