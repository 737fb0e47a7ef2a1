from __future__ import annotations

import pytest
from pydantic import ValidationError

from kdbench.contracts import lr_at_epoch
from kdbench.plan import Recipe


def test_step_schedule_is_one_indexed():
    ms = [150, 180, 210]
    assert lr_at_epoch(0.05, 150, ms, 0.1) == pytest.approx(0.05)
    assert lr_at_epoch(0.05, 151, ms, 0.1) == pytest.approx(0.005)
    assert lr_at_epoch(0.05, 180, ms, 0.1) == pytest.approx(0.005)
    assert lr_at_epoch(0.05, 181, ms, 0.1) == pytest.approx(0.0005)
    assert lr_at_epoch(0.05, 240, ms, 0.1) == pytest.approx(0.00005)


def test_small_students_get_the_small_lr():
    recipe = Recipe()
    assert recipe.resolved("MobileNetV2").lr == 0.01
    assert recipe.resolved("ShuffleV1").lr == 0.01
    assert recipe.resolved("resnet8x4").lr == 0.05
    assert recipe.resolved("resnet8x4").epochs == 240


def test_recipe_rejects_unknown_fields_and_unsorted_milestones():
    with pytest.raises(ValidationError):
        Recipe(epoch=3)
    with pytest.raises(ValidationError):
        Recipe(milestones=(20, 10))
