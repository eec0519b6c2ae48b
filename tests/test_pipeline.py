"""sym3dinv.pipeline without Prefect/Ray: inputs, config hashing, device choice, per-item failure rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sym3dinv.errors import ConfigError
from sym3dinv.pipeline import PipelineConfig, list_inputs, resolve_device, shards


def test_list_inputs_dedupes_by_content_and_reads_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"same-bytes")
    (tmp_path / "b.png").write_bytes(b"same-bytes")  # same photo under another name = one item
    (tmp_path / "c.jpg").write_bytes(b"other")
    (tmp_path / "notes.txt").write_text("ignored")
    label = [float(i) for i in range(25)]
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["c.jpg", label]]}))
    items = list_inputs(str(tmp_path))
    assert len(items) == 2
    by_name = {Path(i.uri).name: i for i in items}
    assert set(by_name) == {"a.png", "c.jpg"}
    assert by_name["c.jpg"].camera == tuple(label) and by_name["a.png"].camera is None
    assert by_name["a.png"].size == 10 and len(by_name["a.png"].id) == 32
    assert [i.id for i in list_inputs(str(tmp_path / "*.jpg"))] == [by_name["c.jpg"].id]
    with pytest.raises(ConfigError, match="does not exist"):
        list_inputs(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        list_inputs(str(tmp_path / "empty"))


def test_config_hash_tracks_what_changes_outputs() -> None:
    base = PipelineConfig(preset="smoke")
    assert base.config_hash == PipelineConfig(preset="smoke").config_hash
    assert base.config_hash != PipelineConfig(preset="smoke", mode="w+").config_hash
    assert base.config_hash != PipelineConfig(preset="smoke", generator="/x/eg3d.pkl").config_hash
    assert base.config_hash != PipelineConfig(preset="smoke", overrides=(("stage1.steps", 3),)).config_hash
    assert PipelineConfig(preset="smoke", overrides=(("stage1.steps", 3),)).inversion.stage1.steps == 3
    assert PipelineConfig(preset="cpu-demo").inversion == PipelineConfig(preset="cpu").inversion  # the demo runs the cpu preset
    with pytest.raises(ConfigError):
        PipelineConfig(preset="nope")
    with pytest.raises(ConfigError):
        PipelineConfig(overrides=(("stage1.no_such_field", 1),))


def test_resolve_device_and_shards() -> None:
    assert resolve_device(1, cuda_available=True) == "cuda"
    assert resolve_device(1, cuda_available=False) == "cpu"
    assert resolve_device(0, cuda_available=True) == "cpu"
    assert [len(s) for s in shards(list(range(7)), 3)] == [3, 3, 1]  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        shards([], 0)


def test_aligned_photos_pass_their_eye_and_mouth_boxes_to_stage2() -> None:
    """A photo without a camera goes through the aligner; its landmark boxes (not the fixed defaults) reach
    the inversion's mirror branch as normalised FaceRegions."""
    import numpy as np
    from PIL import Image

    from sym3dinv.invert.pseudo import DEFAULT_BOXES
    from sym3dinv.pipeline import ItemProcessor
    from tests.plugin import CHEAP_LOSSES, make_tiny

    photo = Path(__file__).resolve().parents[1] / "sym3dinv" / "assets" / "demo" / "astronaut.jpg"
    proc = ItemProcessor(PipelineConfig(preset="smoke", losses=CHEAP_LOSSES), generator=make_tiny())
    try:
        image, camera, mask, regions = proc._align(np.asarray(Image.open(photo).convert("RGB")))
    finally:
        proc.close()
    assert image.shape[0] == image.shape[1] and len(camera) == 25 and mask is not None and mask.any()
    (lx0, ly0, lx1, ly1), (rx0, ry0, rx1, ry1), (mx0, my0, mx1, my1) = regions.boxes
    assert all(0.0 <= v <= 1.0 for b in regions.boxes for v in b)
    assert max(ly1, ry1) < my1 and min(ly0, ry0) < my0  # eyes above the mouth
    assert rx1 < lx1 and (rx0 + rx1) / 2 < 0.5 < (lx0 + lx1) / 2  # subject's right eye is on the image left
    assert regions.boxes != DEFAULT_BOXES


def test_known_cameras_in_other_formats_reach_the_inversion(tmp_path: Path, tiny_checkpoint: str) -> None:
    """``align.camera_format``: a COLMAP dataset.json's labels become the EG3D labels the item is inverted
    at; a NaN label fails that item alone (``bad_camera``), before any inversion."""
    import numpy as np

    from sym3dinv import camera_formats as F
    from sym3dinv.cameras import camera_label
    from sym3dinv.pipeline import ItemProcessor
    from sym3dinv.store import RunStore
    from tests.plugin import make_folder, tiny_pipeline

    src = make_folder(tmp_path / "in", n_good=2)
    eg3d = dict(json.loads((src / "dataset.json").read_text())["labels"])
    colmap = {k: F.from_label(v, "colmap").tolist() for k, v in eg3d.items()}
    colmap["head1.png"][0] = float("nan")
    (src / "dataset.json").write_text(json.dumps({"labels": [[k, v] for k, v in colmap.items()]}))
    items = {Path(i.uri).name: i for i in list_inputs(str(src))}
    config = tiny_pipeline(tiny_checkpoint).with_set("align.camera_format", "colmap")
    assert config.config_hash != tiny_pipeline(tiny_checkpoint).config_hash
    assert PipelineConfig().align.camera_format == "eg3d"
    proc, store = ItemProcessor(config), RunStore(str(tmp_path / "store"))
    good, bad = proc.process(items["head0.png"], store), proc.process(items["head1.png"], store)
    assert good.status.value == "done" and np.allclose(good.camera_label, eg3d["head0.png"], atol=1e-5)
    assert np.allclose(good.camera_label, camera_label(-0.4, 0.05)[0].numpy(), atol=1e-5)
    assert bad.status.value == "failed" and bad.error_class == "bad_camera" and "not_finite" in bad.error_message
