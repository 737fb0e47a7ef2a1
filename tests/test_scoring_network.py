"""The teacher as a network for whole-network estimators (``needs_network``): copies of the modules, and each
split's images in sample order, the images the teacher's scoring outputs were computed on."""

from __future__ import annotations

import torch

from kdbench.train.scoring import scoring_inputs
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.models.resnet import resnet8


def test_the_network_and_images_reproduce_the_scoring_outputs_and_are_copies():
    torch.manual_seed(0)
    data = make_synthetic(num_train=70, num_test=10, num_classes=4, image_size=8, val_fraction=0.2)
    teacher, checkpoint = resnet8(num_classes=4).eval(), resnet8(num_classes=4).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    inputs = scoring_inputs(teacher, data, 5e-4, [(3, 0.1, checkpoint)], batch_size=16, network=True)
    net = inputs.network
    assert net is not None and net.model is not teacher and net.checkpoints[0][2] is not checkpoint
    assert net.checkpoints[0][:2] == (3, 0.1)
    assert net.train_images.shape == (inputs.train.num_samples, 3, 8, 8) and net.train_images.dtype == torch.float32
    assert torch.equal(net.train_labels, inputs.train.labels)
    assert net.val_images is not None and net.val_labels is not None and inputs.val is not None
    assert torch.equal(net.val_labels, inputs.val.labels)
    assert all(p.requires_grad for p in net.model.parameters()) and not net.model.training
    with torch.no_grad():  # row i is sample i: the teacher's logits on it are the scoring outputs' row i
        assert torch.allclose(net.model(net.train_images).double(), inputs.train.logits, atol=1e-5)
        assert torch.allclose(net.model(net.val_images).double(), inputs.val.logits, atol=1e-5)
    loss = net.model(net.train_images[:4]).sum()
    loss.backward()  # differentiable, and the run's teacher is untouched
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    assert scoring_inputs(teacher, data, 5e-4, batch_size=16).network is None  # only when asked for
