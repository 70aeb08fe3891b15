"""Helpers shared by the tasks."""

from typing import Any

__all__ = ['pooled_feature_size']


def pooled_feature_size(model: Any) -> int:
    """Size of the pooled features a timm model returns with ``num_classes=0``.

    timm's ``num_features`` is the width of the last feature map; models with a
    pre-logits head (MobileNetV3, LCNet, ...) return ``head_hidden_size``
    features instead (for example 1024, not 288, for
    ``mobilenetv3_small_050``). timm >= 1.0 defines ``head_hidden_size`` on
    every model; older models fall back to ``num_features``.

    Args:
        model: a timm model.

    Returns:
        The feature size.
    """
    size = getattr(model, 'head_hidden_size', None) or model.num_features
    return int(size)
