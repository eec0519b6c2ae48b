"""Feed-forward inversion (issue 17): an image encoder to W+ offsets from the camera-conditioned mean w.

:class:`Encoder` is the network, :class:`TrainedEncoder` binds it to the generator it was trained for
(by fingerprint); :func:`load_encoder` / :func:`load_encoder_for` read the file, :func:`encode` predicts ws.
``sym3dinv encoder train`` (:mod:`sym3dinv.encoder.train`) trains one; the ``instant`` and ``quick``
presets (``stage1.init = "encoder"``) use it.
"""

from sym3dinv.encoder.files import encoder_path
from sym3dinv.encoder.model import (
           TrainedEncoder,
           encode,
           load_encoder,
           load_encoder_for,
           mean_w_plus,
           save_encoder,
)
from sym3dinv.encoder.network import Encoder, EncoderOutput

__all__ = ["Encoder", "EncoderOutput", "TrainedEncoder", "encode", "encoder_path", "load_encoder", "load_encoder_for",
           "mean_w_plus", "save_encoder"]
