"""EG3D-compatible tri-plane generator in pure PyTorch.

Public calls mirror EG3D so users' scripts carry over:

- ``G = TriPlaneGenerator(**init_kwargs)`` — the kwargs EG3D pickles store; state-dict keys equal EG3D's.
- ``G.mapping(z, c, truncation_psi=1, truncation_cutoff=None)`` -> ws ``[N, num_ws, w_dim]``.
- ``G.synthesis(ws, c, neural_rendering_resolution=None, noise_mode='const', sampling='stochastic'|'deterministic',
  generator=None, precision='fp32'|'bf16'|'fp16', fused_modconv=None, impl='fast'|'ref')`` ->
  :class:`SynthesisOutput` (``out['image']``, ``out['image_raw']``, ``out['image_depth']``, plus
  ``features`` and ``weight_sum``). ``sampling='stochastic'`` (default) draws EG3D's two random tensors
  from the global RNG (or ``generator``) in EG3D's order, so ``torch.manual_seed(s)`` reproduces EG3D's
  renders; ``'deterministic'`` uses bin midpoints and evenly spaced importance samples.
- ``fused_modconv``: None = the checkpoint's choice (EG3D: fused grouped conv in eval mode). On CPU pass
  ``False``: same function (parity with the references is equally good) and faster, much faster in
  backward w.r.t. ws with frozen weights. ``precision`` only takes effect on CUDA (autocast).
- ``G(z, c, ...)``; ``G.sample_mixed(coordinates, directions, ws)`` -> ``{'sigma', 'rgb'}``;
  ``G.planes(ws)`` and ``G.render(planes, ws, c)`` to reuse tri-planes across cameras.
"""

from sym3dinv.generator.checkpoint import load_generator, save_generator
from sym3dinv.generator.safe_pickle import Eg3dCheckpoint, read_eg3d_pickle
from sym3dinv.generator.triplane_generator import SynthesisOutput, TriPlaneGenerator, autocast_context
from sym3dinv.generator.volume import DecodedSamples, generate_planes

__all__ = [
    "DecodedSamples",
    "Eg3dCheckpoint",
    "load_generator",
    "read_eg3d_pickle",
    "save_generator", "SynthesisOutput", "TriPlaneGenerator", "autocast_context", "generate_planes"]
