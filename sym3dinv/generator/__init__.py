"""EG3D-compatible tri-plane generator in pure PyTorch.

Public calls mirror EG3D so users' scripts carry over:

- ``G = TriPlaneGenerator(**init_kwargs)`` — the kwargs EG3D pickles store; state-dict keys equal EG3D's.
- ``G.mapping(z, c, truncation_psi=1, truncation_cutoff=None)`` -> ws ``[N, num_ws, w_dim]``.
- ``G.synthesis(ws, c, neural_rendering_resolution=None, noise_mode='const', sampling='stochastic'|'deterministic',
  generator=None, precision='fp32'|'bf16'|'fp16')`` -> :class:`SynthesisOutput` (``out['image']``,
  ``out['image_raw']``, ``out['image_depth']``, plus ``features`` and ``weight_sum``).
- ``G(z, c, ...)``; ``G.sample_mixed(coordinates, directions, ws)`` -> ``{'sigma', 'rgb'}``;
  ``G.planes(ws)`` and ``G.render(planes, ws, c)`` to reuse tri-planes across cameras.
"""

from sym3dinv.generator.loading import load_generator, save_generator
from sym3dinv.generator.safe_unpickle import Eg3dCheckpoint, read_eg3d_pickle
from sym3dinv.generator.triplane_generator import SynthesisOutput, TriPlaneGenerator, autocast_context
from sym3dinv.generator.volume import DecodedSamples, generate_planes

__all__ = [
    "DecodedSamples",
    "Eg3dCheckpoint",
    "load_generator",
    "read_eg3d_pickle",
    "save_generator", "SynthesisOutput", "TriPlaneGenerator", "autocast_context", "generate_planes"]
