"""Batches and the dataset contract: augmentation equals torchvision, batches cover each epoch exactly once."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.functional as TF

from kdbench.contracts import ImageDataset, channel_stats, hold_out_validation
from kdbench.errors import KdbenchError
from kdbench.train.batches import AugmentParams, PadCropFlip, iterate_batches, normalize

MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.1)


def _images(n: int, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Values 1..255, so the zero padding is distinguishable from image content.
    return torch.randint(1, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


def _reference(images: torch.Tensor, params: AugmentParams, padding: int) -> torch.Tensor:
    """Per-sample torchvision pipeline: RandomCrop(padding, fill=0) then RandomHorizontalFlip."""
    _, _, h, w = images.shape
    out = []
    for i in range(images.shape[0]):
        padded = TF.pad(images[i], [padding], fill=0)
        crop = TF.crop(padded, top=int(params.dy[i]), left=int(params.dx[i]), height=h, width=w)
        out.append(TF.hflip(crop) if bool(params.flip[i]) else crop)
    return torch.stack(out)


# ------------------------------------------------------------------------------------------ PadCropFlip


@pytest.mark.parametrize(("shape", "padding"), [((3, 32, 32), 4), ((1, 20, 24), 4), ((3, 16, 16), 2)])
def test_pad_crop_flip_matches_torchvision(shape: tuple[int, int, int], padding: int) -> None:
    images = _images(64, *shape)
    aug = PadCropFlip(padding=padding)
    params = aug.sample(64, torch.Generator().manual_seed(1), "cpu")
    out = aug(images, params)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(out, _reference(images, params, padding))


def test_pad_crop_flip_extreme_offsets_show_zero_padding() -> None:
    images = _images(4)
    params = AugmentParams(
        dx=torch.tensor([0, 8, 0, 8]),
        dy=torch.tensor([0, 8, 8, 0]),
        flip=torch.tensor([False, False, True, True]),
    )
    out = PadCropFlip()(images, params)
    assert torch.equal(out, _reference(images, params, 4))
    # Sample 0: shifted down/right by 4, zero band top and left.
    assert (out[0, :, :4, :] == 0).all() and (out[0, :, :, :4] == 0).all()
    assert torch.equal(out[0, :, 4:, 4:], images[0, :, :-4, :-4])
    # Sample 1: shifted up/left, zero band bottom and right.
    assert (out[1, :, -4:, :] == 0).all() and (out[1, :, :, -4:] == 0).all()
    assert torch.equal(out[1, :, :-4, :-4], images[1, :, 4:, 4:])
    # Sample 2: dx=0 puts the zero band on the left, the flip moves it to the right.
    assert (out[2, :, :, -4:] == 0).all() and (out[2, :, -4:, :] == 0).all()
    assert (out[2, :, :-4, :-4] != 0).all()


def test_pad_crop_flip_sample_ranges_and_determinism() -> None:
    aug = PadCropFlip(padding=4)
    a = aug.sample(1000, torch.Generator().manual_seed(3), "cpu")
    b = aug.sample(1000, torch.Generator().manual_seed(3), "cpu")
    assert a.dx.dtype == torch.int64 and a.dy.dtype == torch.int64 and a.flip.dtype == torch.bool
    assert int(a.dx.min()) == 0 and int(a.dx.max()) == 8 and int(a.dy.min()) == 0 and int(a.dy.max()) == 8
    assert 0.4 < a.flip.float().mean().item() < 0.6
    assert torch.equal(a.dx, b.dx) and torch.equal(a.dy, b.dy) and torch.equal(a.flip, b.flip)
    no_flip = PadCropFlip(flip=False).sample(100, torch.Generator().manual_seed(3), "cpu")
    assert not no_flip.flip.any()


def test_pad_crop_flip_padding_zero_is_identity_or_mirror() -> None:
    images = _images(8)
    aug = PadCropFlip(padding=0)
    params = aug.sample(8, torch.Generator().manual_seed(0), "cpu")
    out = aug(images, params)
    expected = torch.where(params.flip.view(-1, 1, 1, 1), images.flip(-1), images)
    assert torch.equal(out, expected)


def test_pad_crop_flip_rejects_bad_input() -> None:
    with pytest.raises(KdbenchError, match="padding"):
        PadCropFlip(padding=-1)
    aug = PadCropFlip()
    with pytest.raises(ValueError, match="augmentation parameters"):
        aug(_images(4), aug.sample(3, torch.Generator().manual_seed(0), "cpu"))


# ------------------------------------------------------------------------------------- normalize/stats


def test_normalize_matches_hand_computation() -> None:
    images = torch.tensor([[[[0, 255]], [[51, 102]], [[10, 200]]]], dtype=torch.uint8)  # 1×3×1×2
    out = normalize(images, MEAN, STD)
    assert out.dtype == torch.float32 and out.shape == images.shape
    for c in range(3):
        for j in range(2):
            expected = (int(images[0, c, 0, j]) / 255.0 - MEAN[c]) / STD[c]
            assert out[0, c, 0, j].item() == pytest.approx(expected, abs=1e-5)


def test_normalize_keeps_channels_last_and_checks_channels() -> None:
    images = _images(2).contiguous(memory_format=torch.channels_last)
    out = normalize(images, MEAN, STD)
    assert out.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(KdbenchError, match="channels"):
        normalize(images, (0.5,), (0.5,))


def test_channel_stats_matches_float64() -> None:
    images = _images(50, c=3, h=8, w=8)
    mean, std = channel_stats(images)
    x = images.double() / 255.0
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)
    assert std == pytest.approx(x.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-12)


# ------------------------------------------------------------------------------------- iterate_batches


def _labelled(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return _images(n, h=8, w=8), torch.arange(n, dtype=torch.int64) % 7


def _epoch(images: torch.Tensor, labels: torch.Tensor, seed: int, **kwargs: object) -> list:
    return list(
        iterate_batches(
            images, labels, mean=MEAN, std=STD, generator=torch.Generator().manual_seed(seed), **kwargs
        )
    )


def test_iterate_batches_covers_each_index_once_and_keeps_last_partial() -> None:
    images, labels = _labelled(103)
    batches = _epoch(images, labels, 0, batch_size=16, shuffle=True)
    assert [len(b) for b in batches] == [16] * 6 + [7]
    indices = torch.cat([b.indices for b in batches])
    assert torch.equal(indices.sort().values, torch.arange(103))
    assert not torch.equal(indices, torch.arange(103))  # actually shuffled
    for b in batches:
        assert b.indices.dtype == torch.int64 and b.labels.dtype == torch.int64 and b.augment is None
        assert torch.equal(b.labels, labels[b.indices])
        assert torch.equal(b.images, normalize(images[b.indices], MEAN, STD))


def test_iterate_batches_drop_last() -> None:
    images, labels = _labelled(103)
    batches = _epoch(images, labels, 0, batch_size=16, shuffle=True, drop_last=True)
    assert [len(b) for b in batches] == [16] * 6
    assert torch.cat([b.indices for b in batches]).unique().numel() == 96
    assert _epoch(images[:5], labels[:5], 0, batch_size=16, shuffle=False, drop_last=True) == []


def test_iterate_batches_unshuffled_is_in_order() -> None:
    images, labels = _labelled(10)
    batches = _epoch(images, labels, 0, batch_size=4, shuffle=False)
    assert torch.equal(torch.cat([b.indices for b in batches]), torch.arange(10))


def test_iterate_batches_deterministic_per_seed() -> None:
    images, labels = _labelled(103)
    kwargs = dict(batch_size=32, shuffle=True, augment=PadCropFlip())
    a, b, c = (
        _epoch(images, labels, 5, **kwargs),
        _epoch(images, labels, 5, **kwargs),
        _epoch(images, labels, 6, **kwargs),
    )
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.indices, y.indices) and torch.equal(x.images, y.images)
        assert torch.equal(x.augment.dx, y.augment.dx) and torch.equal(x.augment.flip, y.augment.flip)
    assert not torch.equal(torch.cat([x.indices for x in a]), torch.cat([x.indices for x in c]))


def test_iterate_batches_augmentation_is_reproducible_from_params() -> None:
    images, labels = _labelled(50)
    aug = PadCropFlip(padding=2)
    batches = _epoch(images, labels, 1, batch_size=16, shuffle=True, augment=aug, channels_last=True)
    for b in batches:
        assert len(b.augment) == len(b)
        assert b.images.is_contiguous(memory_format=torch.channels_last)
        expected = normalize(_reference(images[b.indices], b.augment, 2), MEAN, STD)
        assert torch.equal(b.images, expected)


def test_iterate_batches_rejects_bad_batch_size() -> None:
    images, labels = _labelled(4)
    with pytest.raises(KdbenchError, match="batch_size"):
        _epoch(images, labels, 0, batch_size=0, shuffle=False)


# ------------------------------------------------------------------------------------- hold-out / dataset


def _index_images(n: int) -> torch.Tensor:
    """Images whose pixels encode their own index, to check which samples went where."""
    idx = torch.arange(n)
    return torch.stack([idx // 256, idx % 256], dim=1).to(torch.uint8).view(n, 1, 1, 2)


def _decode(images: torch.Tensor) -> set[int]:
    flat = images.view(-1, 2).long()
    return set((flat[:, 0] * 256 + flat[:, 1]).tolist())


def test_hold_out_validation_stratified_disjoint_deterministic() -> None:
    counts = [50, 30, 20, 7]
    labels = torch.cat([torch.full((k,), c, dtype=torch.int64) for c, k in enumerate(counts)])
    labels = labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))]
    images = _index_images(labels.numel())
    tr_x, tr_y, va_x, va_y = hold_out_validation(images, labels, 0.2, seed=0)
    # ceil(0.2 * 107) = 22 in total, by largest remainder: 10 + 6 + 4 + 2 (7 * 0.2 = 1.4 gets the extra one).
    assert va_y.bincount(minlength=4).tolist() == [10, 6, 4, 2]
    assert tr_y.bincount(minlength=4).tolist() == [40, 24, 16, 5]
    train_ids, val_ids = _decode(tr_x), _decode(va_x)
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(labels.numel()))
    assert all(int(labels[i]) == int(y) for i, y in zip(sorted(val_ids), va_y.tolist(), strict=True))
    again = hold_out_validation(images, labels, 0.2, seed=0)
    assert torch.equal(again[2], va_x) and torch.equal(again[3], va_y)
    other = hold_out_validation(images, labels, 0.2, seed=1)
    assert _decode(other[2]) != val_ids


def test_hold_out_validation_edge_cases() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    images = _index_images(6)
    tr_x, tr_y, va_x, va_y = hold_out_validation(images, labels, 0.0, seed=0)
    assert tr_x.shape[0] == 6 and va_x.shape == (0, 1, 1, 2) and va_y.shape == (0,)
    # A class never loses its last training sample (class 2 has one).
    _, tr_y, _, va_y = hold_out_validation(images, labels, 0.5, seed=0)
    assert 2 in tr_y.tolist() and 2 not in va_y.tolist()
    for bad in (-0.1, 1.0, math.nan):
        with pytest.raises(KdbenchError, match="fraction"):
            hold_out_validation(images, labels, bad, seed=0)


def _dataset() -> ImageDataset:
    x, y = _images(10, h=8, w=8), torch.arange(10) % 2
    return ImageDataset(
        name="toy", num_classes=2, train_images=x[:6], train_labels=y[:6], val_images=x[6:6],
        val_labels=y[6:6], test_images=x[6:], test_labels=y[6:], mean=MEAN, std=STD,
    )  # fmt: skip


def test_image_dataset_accessors() -> None:
    ds = _dataset()
    assert ds.image_shape == (3, 8, 8) and ds.num_train == 6
    assert ds.split("val")[0].shape[0] == 0 and ds.split("test")[1].shape == (4,)
    moved = ds.to("cpu")
    assert moved.device == torch.device("cpu") and torch.equal(moved.train_images, ds.train_images)
    with pytest.raises(KdbenchError, match="unknown split"):
        ds.split("training")
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(**{**ds.__dict__, "test_images": ds.test_images.float()})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_iterate_batches_is_device_independent() -> None:
    images, labels = _labelled(70)
    kwargs = dict(batch_size=32, shuffle=True, augment=PadCropFlip())
    cpu = _epoch(images, labels, 7, **kwargs)
    gpu = _epoch(images.cuda(), labels.cuda(), 7, **kwargs)
    for a, b in zip(cpu, gpu, strict=True):
        assert b.images.is_cuda and b.labels.is_cuda and b.indices.is_cuda and b.augment.dx.is_cuda
        assert torch.equal(a.indices, b.indices.cpu()) and torch.equal(a.labels, b.labels.cpu())
        torch.testing.assert_close(a.images, b.images.cpu())
