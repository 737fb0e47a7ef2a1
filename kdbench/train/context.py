"""What a method sees when it builds its extra modules: the pair, the data's shape, real feature shapes."""

from __future__ import annotations

from torch import nn

from kdbench.contracts import DistillationMethod, ImageDataset, MethodContext, PairInfo, StreamedDataset, TrainingRecipe
from kdbench.contracts.models import classifier_of, feature_shapes


def build_method_context(
    method: DistillationMethod,
    student: nn.Module,
    teacher: nn.Module | None,
    data: ImageDataset | StreamedDataset,
    pair: PairInfo,
    recipe: TrainingRecipe,
) -> MethodContext:
    """The context for ``method.setup``; feature shapes are measured only when the method needs features."""
    channels, image_size = data.image_shape[0], data.image_shape[1]
    needs_feats = method.needs_features
    return MethodContext(
        pair=pair,
        num_classes=data.num_classes,
        num_train=data.num_train,
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        student_feature_shapes=(
            feature_shapes(student, image_size, channels, preact=method.student_preact) if needs_feats else []
        ),
        teacher_feature_shapes=(
            feature_shapes(teacher, image_size, channels, preact=method.teacher_preact)
            if needs_feats and teacher is not None
            else []
        ),
        teacher_classifier=classifier_of(teacher) if teacher is not None else None,
        train_labels=data.train_labels,
    )
