"""`as_decoder`: what the engine decodes grid points with, from a projector or a decoder.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import LinearDecoder
>>> dec = as_decoder(LinearDecoder(np.zeros(2), np.eye(2)))
>>> dec(np.array([[1.0, 2.0]])).tolist()
[[1.0, 2.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidTypeError
from ..projectors.base import LinearDecoder
from .binding import is_linear_decoder

__all__ = ["as_decoder"]


def as_decoder(projector_or_decoder: Any) -> Any:
    """What the engine decodes grid points with: a projector's ``decoder()``, or a decoder as is.

    A decoder is a :class:`~losstopo.projectors.LinearDecoder` (``center + coords @ components``:
    the engine's fast paths apply) or any callable ``coords (m, d) -> params (m, n_params)``.

    Examples
    --------
    >>> import torch
    >>> from losstopo import PCAProjector
    >>> pca = PCAProjector(1).fit(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.1]]))
    >>> decoder = as_decoder(pca)
    >>> type(decoder).__name__, bool(((decoder([[0.5]]) - pca.inverse_transform([[0.5]])) ** 2).sum() < 1e-20)
    ('LinearDecoder', True)
    """
    obj = projector_or_decoder
    make = getattr(obj, "decoder", None)
    if callable(make):
        return make()
    if getattr(obj, "linear", False):  # a projector of the user's own, linear
        return LinearDecoder(np.asarray(obj.center_), np.asarray(obj.components_))
    inverse = getattr(obj, "inverse_transform", None)
    if callable(inverse):  # a projector of the user's own, decoding
        return inverse
    if is_linear_decoder(obj) or callable(obj):
        return obj
    raise InvalidTypeError(
        f"Expected a losstopo projector, a LinearDecoder (center, components) or a callable "
        f"coords -> params; got {type(obj).__name__}."
    )
