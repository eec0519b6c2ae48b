"""Meshes: marching cubes on an analytic density (closed, right size), the z-buffer depth against exact
ray/sphere hits, and on the embedded SynthHeads generator: closed and aligned with its rendered depth."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from sym3dinv.cameras import camera_label, pixel_rays
from sym3dinv.dataset.mesh import (
    density_grid,
    depth_map,
    extract_mesh,
    mesh_bytes,
    mesh_from_density,
    mesh_stats,
    vertex_colors,
)

R_SPHERE = 0.3


def sphere_grid(n: int = 48, r: float = R_SPHERE, centre=(0.0, 0.05, 0.1)):
    t = np.linspace(-0.5, 0.5, n)
    x, y, z = np.meshgrid(t, t, t, indexing="ij")
    dist = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    return 20.0 * (1.0 - dist / r) + 10.0, (-0.5, -0.5, -0.5), 1.0 / (n - 1)  # level 10 exactly at radius r


def test_sphere_density_gives_a_closed_sphere_of_the_right_radius() -> None:
    import trimesh

    sigma, origin, voxel = sphere_grid()
    v, f = mesh_from_density(sigma, 10.0, origin, voxel)
    m = trimesh.Trimesh(v, f, process=False)
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0  # outward normals
    radii = np.linalg.norm(v - np.array([0.0, 0.05, 0.1]), axis=1)
    assert np.abs(radii - R_SPHERE).max() < 0.25 * voxel
    assert abs(m.volume / (4 / 3 * np.pi * R_SPHERE**3) - 1) < 0.02
    st = mesh_stats(v, f)
    assert st.watertight and st.boundary_edge_fraction == 0.0


def test_surface_touching_the_box_is_closed_and_floaters_are_dropped() -> None:
    sigma, origin, voxel = sphere_grid(r=0.55)  # sticks out of the box at z = +0.5: cut by that face
    sigma = sigma.copy()
    sigma[1:4, 1:4, 1:4] = 50.0  # a floater in a corner
    v, f = mesh_from_density(sigma, 10.0, origin, voxel, keep_largest=False)
    v1, f1 = mesh_from_density(sigma, 10.0, origin, voxel)
    assert mesh_stats(v, f).watertight and mesh_stats(v1, f1).watertight
    assert len(f1) < len(f)  # the floater's component is gone
    assert v1[:, 2].max() == pytest.approx(0.5, abs=voxel)  # closed by a cap at the box face
    with pytest.raises(ValueError, match="no surface"):
        mesh_from_density(np.zeros((8, 8, 8)), 10.0)


def test_depth_map_matches_exact_ray_sphere_hits() -> None:
    sigma, origin, voxel = sphere_grid(n=64, centre=(0.0, 0.0, 0.0))
    v, f = mesh_from_density(sigma, 10.0, origin, voxel)
    res = 48
    c = camera_label(0.4, -0.2).double()
    zb = depth_map(v, f, c[0].numpy(), res).reshape(-1)
    o, d = (t[0].numpy() for t in pixel_rays(c, res))
    b = (o * d).sum(1)
    disc = b * b - ((o * o).sum(1) - R_SPHERE**2)
    fwd = c[0, :16].reshape(4, 4)[:3, 2].numpy()
    z_exact = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) * (d @ fwd), np.inf)
    inner = disc > 0.02  # away from the silhouette, where the polygonal mesh and the sphere differ
    assert np.isfinite(zb[inner]).all() and not np.isfinite(zb[disc < -0.02]).any()
    assert np.abs(zb[inner] - z_exact[inner]).max() < 0.5 * voxel


@pytest.fixture(scope="module")
def synthheads():
    from sym3dinv.generator import load_generator
    from tests.dataset.helpers import synth_ws

    G = load_generator("synthheads")
    return G, synth_ws((0,))[0]


def test_density_grid_is_sample_mixed(synthheads) -> None:
    G, ws = synthheads
    g = density_grid(G, ws, resolution=8, chunk=100)
    pts = torch.from_numpy(np.stack(np.meshgrid(*[np.linspace(-0.5, 0.5, 8)] * 3, indexing="ij"), -1).reshape(1, -1, 3)).float()
    with torch.no_grad():
        ref = G.sample_mixed(pts, torch.zeros_like(pts), torch.from_numpy(ws)[None]).sigma[0, :, 0]
    np.testing.assert_allclose(g.sigma.reshape(-1), ref.numpy(), atol=1e-4)
    assert g.origin == (-0.5, -0.5, -0.5) and g.voxel == pytest.approx(1 / 7)


def test_synthheads_mesh_is_closed_coloured_and_aligned_with_rendered_depth(synthheads) -> None:
    """Marching cubes at EG3D's level 10 vs the frontal render's depth where alpha > 0.9 (the head)."""
    import trimesh

    from sym3dinv.dataset.render import render_identity

    G, ws = synthheads
    v, f, col = extract_mesh(G, ws, resolution=64, threshold=10.0)
    st = mesh_stats(v, f)
    assert st.faces > 2000 and st.boundary_edge_fraction < 0.01
    assert col.shape == (len(v), 3) and col.dtype == np.uint8 and col.std() > 1
    res = 64
    c = camera_label(0.0, 0.0)
    views = render_identity(G, ws, c.numpy(), resolution=64, depth_resolution=res)
    zb = depth_map(v, f, c[0].numpy(), res)
    head = views.alpha[0] > 0.9
    depth = views.depth[0][head]
    signed = zb[head] - depth
    err = np.abs(signed)
    hit = np.isfinite(zb[head]).mean()
    rel = np.median(err) / (depth.max() - depth.min())
    offset = np.median(signed[np.isfinite(signed)])
    spread = np.median(np.abs(signed[np.isfinite(signed)] - offset))
    print(f"synthheads mesh vs depth: hit {hit:.3f}, median |dz| {np.median(err):.4f} (offset {offset:.4f}, "
          f"spread {spread:.4f}), head depth range {depth.max() - depth.min():.3f}, relative {rel:.3f}")
    assert hit > 0.9  # the level-10 surface covers the rendered head
    # the soft density puts the level-10 surface ~0.021 (v2; v1 0.026) in front of the expected termination depth
    # (docs/datasets.md); the shape itself agrees to well under a voxel (1/63) once that offset is removed
    assert np.median(err) < 0.04 and rel < 0.2 and -0.04 < offset < 0 and spread < 0.01
    assert not np.isfinite(zb[views.alpha[0] < 0.5]).any() if (views.alpha[0] < 0.5).any() else True
    ply = trimesh.load(io.BytesIO(mesh_bytes(v, f, col, "ply")), file_type="ply")
    assert len(ply.vertices) == len(v) and np.array_equal(ply.visual.vertex_colors[:, :3], col)
    glb = trimesh.load(io.BytesIO(mesh_bytes(v, f, col, "glb")), file_type="glb")
    geom = list(glb.geometry.values())[0]
    assert len(geom.faces) == len(f)
    assert vertex_colors(G, ws, v[:0]).shape == (0, 3)
