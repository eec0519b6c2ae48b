"""Generator and rendering constants (METHOD.md "Generator"); EG3D's FFHQ numbers are the defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderingConfig:
    """Tri-plane volume rendering of EG3D's ffhqrebalanced512-128 (METHOD.md "Generator")."""

    depth_resolution: int = 48
    """Stratified (coarse) samples per ray."""
    depth_resolution_importance: int = 48
    """Importance (fine) samples per ray, drawn from the coarse weights."""
    ray_start: float = 2.25
    """Near bound of every ray, world units (camera radius 2.7 minus the head's extent)."""
    ray_end: float = 3.3
    """Far bound of every ray, world units."""
    box_warp: float = 1.0
    """Side of the cube that the tri-planes span, centred at the origin."""
    avg_camera_radius: float = 2.7
    """Orbit radius of the training cameras."""
    avg_camera_pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)
    """Look-at point of the training cameras (head centre, above the origin)."""
    focal: float = 4.2647
    """Focal length normalised by image size (FOV 18.837 degrees)."""
    neural_rendering_resolution: int = 128
    """Resolution of the volume-rendered feature image before super-resolution."""
    deterministic: bool = False
    """True: fixed stratified depths (no jitter) and deterministic importance sampling (inversion, tests);
    False: EG3D's stochastic sampling that draws from the global RNG exactly as EG3D does."""


FFHQ_RENDERING = RenderingConfig()
