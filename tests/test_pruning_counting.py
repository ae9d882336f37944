"""count(): parameters and MACs of a whole model, by hand and against Torch-Pruning's counter."""
import torch
import torch_pruning as tp
from torch import nn

from hpo_prune import models
from hpo_prune.pruning import count


def _small():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),       # 8x8 out: 4*64 outputs x 27 MACs
        nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, groups=4, bias=False),         # depthwise, 6x6: 4*36 x 9
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 2))                                  # 2 x 4


def test_counts_by_hand():
    model = _small()
    counted = count(model, (1, 3, 8, 8))
    assert counted["macs_dense"] == 4 * 64 * 27 + 4 * 36 * 9 + 2 * 4
    assert counted["macs"] == counted["macs_dense"]
    assert counted["params_total"] == 108 + 8 + 36 + 10 == sum(
        p.numel() for p in model.parameters())
    assert counted["params_nonzero"] == counted["params_total"] - 4  # BatchNorm's zero bias


def test_macs_scale_with_each_layers_density():
    model = _small()
    with torch.no_grad():
        model[0].weight.view(-1)[:54].zero_()  # half of the first layer's weights
    counted = count(model, (1, 3, 8, 8))
    assert counted["macs"] == 4 * 64 * 27 // 2 + 4 * 36 * 9 + 2 * 4
    assert counted["params_nonzero"] == 108 + 8 + 36 + 10 - 4 - 54


def test_counts_are_per_image_and_leave_the_model_untouched():
    model = _small().train()
    stats = model[1].running_mean.clone()
    one, four = count(model, (1, 3, 8, 8)), count(model, (4, 3, 8, 8))
    assert one == four
    assert model.training and torch.equal(model[1].running_mean, stats)


def test_macs_agree_with_torch_pruning_on_a_bias_free_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False),
                          nn.Conv2d(8, 8, 3, groups=8, bias=False),
                          nn.Conv2d(8, 16, 1, bias=False), nn.Flatten(),
                          nn.Linear(16 * 14 * 14, 10, bias=False))
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, 16, 16))
    counted = count(model, (1, 3, 16, 16))
    assert counted["macs_dense"] == macs and counted["params_total"] == params


def test_full_networks():
    vgg = models.build("vgg16", 10, 32)
    counted = count(vgg, (1, 3, 32, 32))
    assert counted["params_total"] == 14_719_818  # 13 convolutions + one Linear(512, 10)
    # conv MACs: sum over layers of H*W*C_out*C_in*9 on 32, 16, 8, 4, 2 px maps
    convs = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8),
             (256, 256, 8), (256, 256, 8), (256, 512, 4), (512, 512, 4), (512, 512, 4),
             (512, 512, 2), (512, 512, 2), (512, 512, 2)]
    assert counted["macs_dense"] == sum(s * s * o * i * 9 for i, o, s in convs) + 512 * 10
