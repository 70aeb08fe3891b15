import math
from typing import cast

import pytest
import torch
from torch import nn

from torchgeo_satclip.models import (
    MLP,
    NETWORKS,
    FCNet,
    LinearNet,
    SatCLIPMLP,
    SirenLayer,
    SirenNet,
    get_network,
)


def hidden(net: SirenNet, i: int) -> SirenLayer:
    """Hidden layer *i* of *net* (a ModuleList item, typed)."""
    return cast(SirenLayer, net.layers[i])


def bias_of(layer: SirenLayer) -> torch.Tensor:
    """The bias of a layer built with one."""
    assert layer.bias is not None
    return layer.bias


def test_siren_released_shapes_and_keys() -> None:
    net = SirenNet(dim_in=100, dim_hidden=512, dim_out=256, num_layers=2)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        'layers.0.weight': (512, 100),
        'layers.0.bias': (512,),
        'layers.1.weight': (512, 512),
        'layers.1.bias': (512,),
        'last_layer.weight': (256, 512),
        'last_layer.bias': (256,),
    }
    assert net.layers[0].w0 == 30.0
    assert net.layers[1].w0 == 1.0
    assert not net.last_layer.activation


def test_siren_initialisation_bounds() -> None:
    torch.manual_seed(0)
    net = SirenNet(dim_in=100, dim_hidden=512, dim_out=256, num_layers=2)
    first = 1.0 / 100
    other = math.sqrt(6.0 / 512) / 1.0
    for param in (hidden(net, 0).weight, bias_of(hidden(net, 0))):
        assert param.abs().max() <= first
        assert param.abs().max() > 0.9 * first  # uniform fills the range
    for param in (
        hidden(net, 1).weight,
        bias_of(hidden(net, 1)),
        net.last_layer.weight,
    ):
        assert param.abs().max() <= other
        assert param.abs().max() > 0.9 * other


def test_siren_forward_formula_eval() -> None:
    torch.manual_seed(0)
    net = SirenNet(dim_in=4, dim_hidden=8, dim_out=3, num_layers=2).double().eval()
    x = torch.randn(5, 4, dtype=torch.float64)
    h = torch.sin(30.0 * (x @ hidden(net, 0).weight.T + bias_of(hidden(net, 0))))
    h = torch.sin(1.0 * (h @ hidden(net, 1).weight.T + bias_of(hidden(net, 1))))
    expected = h @ net.last_layer.weight.T + bias_of(net.last_layer)
    torch.testing.assert_close(net(x), expected)
    # eval mode is deterministic: no dropout
    torch.testing.assert_close(net(x), net(x))


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float64])
def test_siren_layer_with_w0_one_skips_an_exact_multiplication(
    dtype: torch.dtype,
) -> None:
    """sin(1.0 * z) and sin(z) agree bit for bit, NaN, inf and -0.0 included."""
    torch.manual_seed(0)
    layer = SirenLayer(6, 16, w0=1.0, dropout=0.0).to(dtype).eval()
    x = torch.randn(9, 6).to(dtype)
    x[1, 0] = float('nan')
    x[2, 0] = float('inf')
    x[3] = -0.0
    with torch.no_grad():
        z = torch.nn.functional.linear(x, layer.weight, layer.bias)
        expected = torch.sin(1.0 * z)
        assert torch.equal(torch.isnan(layer(x)), torch.isnan(expected))
        same = (layer(x) == expected) | torch.isnan(expected)
    assert same.all()


def test_siren_dropout_before_sine_in_training_only() -> None:
    torch.manual_seed(0)
    layer = SirenLayer(6, 1000, w0=1.0, dropout=0.5).double()
    x = torch.randn(1, 6, dtype=torch.float64)
    layer.train()
    out = layer(x)
    # Dropped pre-activations are 0, so sin(0) = 0 exactly; kept ones are
    # sin(2 (Wx + b)) (inverted dropout scales by 1/(1 - p)).
    pre = x @ layer.weight.T + bias_of(layer)
    dropped = out == 0
    assert 0.35 < dropped.float().mean() < 0.65
    torch.testing.assert_close(out[~dropped], torch.sin(2.0 * pre)[~dropped])
    layer.eval()
    torch.testing.assert_close(layer(x), torch.sin(pre))


def test_siren_last_layer_has_no_dropout() -> None:
    net = SirenNet(dim_in=3, dim_hidden=16, dim_out=4, num_layers=1, dropout=0.5)
    assert net.last_layer.dropout == 0.0
    assert all(layer.dropout == 0.5 for layer in net.layers)


def test_mlp_hidden_layers_do_not_share_weights() -> None:
    mlp = MLP(dim_in=5, dim_hidden=7, dim_out=3, num_layers=3)
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    assert len({id(m.weight) for m in linears}) == 3
    # parameter count with independent layers
    expected = (5 * 7 + 7) + 2 * (7 * 7 + 7) + (7 * 3 + 3)
    assert sum(p.numel() for p in mlp.parameters()) == expected
    assert mlp(torch.randn(2, 5)).shape == (2, 3)


@pytest.mark.parametrize('num_layers', [0, 1, 3])
def test_satclip_mlp_has_the_original_depth_and_names(num_layers: int) -> None:
    """Input layer, ``num_layers`` hidden layers, output: as the original's MLP."""
    mlp = SatCLIPMLP(dim_in=5, dim_hidden=7, dim_out=3, num_layers=num_layers)
    last = 2 * num_layers + 2
    assert list(mlp.state_dict()) == [
        f'features.{i}.{name}'
        for i in range(0, last + 1, 2)
        for name in ('weight', 'bias')
    ]
    assert sum(isinstance(m, nn.ReLU) for m in mlp.features) == num_layers + 1
    hidden = [mlp.features[i].weight for i in range(2, last, 2)]
    assert len({id(w) for w in hidden}) == num_layers  # not shared
    x = torch.randn(2, 5)
    h = torch.relu(mlp.features[0](x))
    for i in range(2, last, 2):
        h = torch.relu(mlp.features[i](h))
    torch.testing.assert_close(mlp(x), mlp.features[last](h))


def test_mlp_network_is_satclips() -> None:
    assert isinstance(get_network('mlp', dim_in=4, num_layers=2), SatCLIPMLP)


def test_fcnet_structure() -> None:
    net = FCNet(dim_in=9, dim_hidden=16, dim_out=4)
    assert net.last_layer.bias is None
    blocks = list(net.feats)[2:]
    assert len(blocks) == 4
    net.eval()
    x = torch.randn(3, 9)
    # residual: block output = input + f(input)
    h = net.feats[1](net.feats[0](x))
    block = blocks[0]
    torch.testing.assert_close(block(h), h + block.block(h))
    assert net(x).shape == (3, 4)


def test_linear() -> None:
    net = LinearNet(dim_in=9, dim_out=4)
    assert net(torch.randn(2, 9)).shape == (2, 4)


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_get_network(name: str) -> None:
    # 12 input features: 'geoclip' splits them into its three branches.
    net = get_network(name, dim_in=12, dim_hidden=12, dim_out=6, num_layers=2)
    assert isinstance(net, NETWORKS[name])
    assert net(torch.randn(4, 12)).shape == (4, 6)


def test_get_network_errors() -> None:
    with pytest.raises(ValueError, match="unknown network 'transformer'"):
        get_network('transformer', dim_in=3)
    with pytest.raises(
        ValueError, match='dim_hidden must be a positive integer, got 0'
    ):
        SirenNet(dim_in=3, dim_hidden=0)
    with pytest.raises(ValueError, match='num_layers must be at least 1'):
        MLP(dim_in=3, num_layers=0)


def test_registry_is_what_get_network_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchgeo_satclip.models import NETWORKS, get_network, list_networks

    assert list_networks() == ['fcnet', 'geoclip', 'linear', 'mlp', 'siren']

    class Tiny(torch.nn.Module):
        def __init__(self, dim_in: int, dim_out: int = 256) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(dim_in, dim_out)

    monkeypatch.setitem(NETWORKS, 'tiny', Tiny)
    net = get_network('tiny', dim_in=5, dim_hidden=7, dim_out=3, num_layers=9)
    assert isinstance(net, Tiny)
    assert net.linear.weight.shape == (3, 5)
    assert 'tiny' in list_networks()
    with pytest.raises(
        ValueError, match=r"unknown network 'nope'; expected one of \['fcnet'"
    ):
        get_network('nope', dim_in=4)
