"""Top-1 and top-5 accuracy against a hand computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kdbench.train.evaluate import accuracy


class TableModel(nn.Module):
    """Returns a fixed row of logits per sample; the sample's index is written in its pixels."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = torch.round(x[:, 0, 0, 0] * 255).long()  # mean 0, std 1: x = pixel / 255
        return self.logits[index]


def images_for(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()


def test_top1_and_top5_by_hand():
    ranked = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # class 0 first, class 5 sixth
    model = TableModel(ranked.repeat(4, 1))
    labels = torch.tensor([0, 4, 5, 1])  # rank 1 (both), rank 5 (top-5 only), rank 6 (neither), rank 2 (top-5)
    got = accuracy(model, images_for(4), labels, (0.0,), (1.0,), batch_size=3)
    assert got.top1 == pytest.approx(100 * 1 / 4) and got.top5 == pytest.approx(100 * 3 / 4)


def test_top5_with_five_classes_or_fewer_is_every_sample():
    model = TableModel(torch.tensor([[3.0, 2.0, 1.0, 0.0]]).repeat(2, 1))
    got = accuracy(model, images_for(2), torch.tensor([3, 1]), (0.0,), (1.0,))
    assert (got.top1, got.top5) == (0.0, 100.0)
