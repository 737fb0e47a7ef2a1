"""Names shared by every layer, in a module that imports nothing (the tables read them without torch)."""

#: The method that trains from ground truth alone: teachers, and students "from scratch", use it.
SCRATCH_METHOD = "ce"

#: The paper's η (Tables III, V, VI, VIII) and Eq. (11)'s λ1, λ2 (each table holds the other at 1).
DEFAULT_ETA = 0.8
DEFAULT_LAMBDA1 = 1.0
DEFAULT_LAMBDA2 = 1.0
#: The strategy a suite's ``revision:`` uses when it names none.
DEFAULT_STRATEGY = "paper"
#: The paper's Data Selection (docs/methods.md §6): the 80% highest-influence samples go to the teacher.
DEFAULT_ESTIMATOR = "influence"
DEFAULT_FRACTION = 0.8


def default_label(method: str, revised: bool, selection_mode: str | None) -> str:
    """A run's label when its suite entry names none: the method, then ``+LR`` with Label Revision, ``+DS`` with
    Data Selection (D_t to the teacher), ``+removal`` when the selected samples are removed instead (mode drop;
    not Data Selection, so not counted as +DS by the leaderboard's filters)."""
    flags = (["LR"] if revised else []) + {"teacher": ["DS"], "drop": ["removal"], None: []}[selection_mode]
    return "+".join([method, *flags])
