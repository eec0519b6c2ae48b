"""EG3D's FFHQ camera and ray constants, defined here once (METHOD.md "Generator", fixtures/eg3d/README.md).

Every module that needs one imports it from here: the cameras (:mod:`sym3dinv.cameras`), the config
defaults (:mod:`sym3dinv.config`), the generator's rendering defaults, the synthetic heads and the store's
depth quantisation. Plain Python numbers, no torch import, so configs and the store can use them too.
``tests/test_layering.py`` fails when one of these numbers is written as a literal anywhere else.
"""

from __future__ import annotations

RADIUS = 2.7
"""Orbit radius of FFHQ's cameras around the world origin (EG3D ``avg_camera_radius``)."""
PIVOT: tuple[float, float, float] = (0.0, 0.0, 0.2)
"""Look-at point of FFHQ's cameras: the head centre, above the origin (EG3D ``avg_camera_pivot``)."""
FFHQ_FOCAL = 4.2647
"""Focal length normalised by image size, as in FFHQ's ``dataset.json`` labels."""
FOV_DEG = 18.837
"""Field of view (degrees) EG3D's ``gen_samples.py`` uses (focal 4.263391 through EG3D's own formula)."""
RAY_START = 2.25
"""Near bound of every ray, world units (the camera radius minus the head's extent)."""
RAY_END = 3.3
"""Far bound of every ray, world units; every head surface lies between RAY_START and RAY_END."""
