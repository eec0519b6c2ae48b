"""Stage 1 batched across the items of one actor call (``ItemProcessor.process_many``): same results as one
item at a time, per-item failures still per item, and a failing batch redone item by item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sym3dinv.pipeline import ItemProcessor, PipelineConfig, list_inputs
from sym3dinv.store import RunStore
from tests.plugin import BAD, CHEAP_LOSSES, make_cheap_losses, make_folder

STEPS = (("stage1.steps", 2), ("stage1.w_avg_samples", 64), ("stage2.steps", 2), ("stage2.pseudo_every", 2),
         ("stage2.lpips_threshold", 0.0), ("stage1.batch_size", 2))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("in"), n_good=3)


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean(dim=(1, 2, 3))


def _ordered(folder: Path) -> list:
    """Good renders first, then the bad files: head0, broken, head1, empty, head2, tiny (mixed in a batch)."""
    items = {Path(i.uri).name: i for i in list_inputs(str(folder))}
    return [items[n] for n in ("head0.png", "broken.png", "head1.png", "empty.jpg", "head2.png", "tiny.png")]


def test_process_many_equals_one_by_one(folder: Path, tiny_checkpoint: str, tmp_path: Path) -> None:
    config = PipelineConfig(generator=tiny_checkpoint, preset="smoke", mode="spi", losses=CHEAP_LOSSES, overrides=STEPS)
    items = _ordered(folder)
    proc = ItemProcessor(config)
    events: list[str] = []
    batched_store = RunStore(str(tmp_path / "batched"))
    rows = proc.process_many(items, batched_store, [0, 0, 1, 0, 0, 0],
                             progress=lambda stage, step, total, _: events.append(stage))
    assert [Path(r.source_uri).name for r in rows] == [Path(i.uri).name for i in items]  # one row each, in order
    status = {Path(r.source_uri).name: (r.status.value, r.error_class) for r in rows}
    assert status == {"head0.png": ("done", None), "head1.png": ("done", None), "head2.png": ("done", None),
                      **{k: ("failed", v) for k, v in BAD.items()}}
    assert rows[2].attempt == 1  # the caller's attempt numbers are kept
    sec = rows[0].stage_seconds  # head0 shared its stage-1 batch with head1: its row holds its share
    assert sec["invert_stage1"] == pytest.approx(sec["invert_stage1_batch"] / 2)
    assert rows[4].stage_seconds["invert_stage1"] == rows[4].stage_seconds["invert_stage1_batch"]  # alone
    # 3 good items, batches of 2: stage 1 ran twice (2 steps each), stage 2 three times (2 steps each)
    assert events.count("stage1") == 4 and events.count("stage2") == 6
    single_store = RunStore(str(tmp_path / "single"))
    singles = [ItemProcessor(config).process(items[i], single_store) for i in (0, 2, 4)]
    for b, s in zip((rows[0], rows[2], rows[4]), singles, strict=True):
        wb = batched_store.load_latents(b.item_dir)["ws"]
        ws = single_store.load_latents(s.item_dir)["ws"]
        assert wb.shape == ws.shape and float(np.abs(wb - ws).max()) <= 1e-4  # batching: float rounding only
        assert abs(b.metrics["psnr"] - s.metrics["psnr"]) <= 1e-3
        assert set(b.outputs) == set(s.outputs) and "delta" in b.outputs


def test_failing_batch_is_redone_item_by_item(folder: Path, tiny_checkpoint: str, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A loss that raises in stage 2 for one target (head1, the middle one) sinks its batch; the batch's
    other items are redone alone and finish, and the error is recorded against head1 only."""
    items = [i for i in _ordered(folder) if Path(i.uri).name.startswith("head")]
    with torch.no_grad():
        from PIL import Image

        poison = torch.from_numpy(np.array(Image.open(items[1].uri).convert("RGB"))).permute(2, 0, 1).float()
        poison = poison[None] / 127.5 - 1

    def perceptual(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and y.shape == poison.shape and float((y - poison).abs().max()) < 1e-5:
            raise RuntimeError("poisoned target")  # stage 2's input-view loss of head1 (stage 1 sees pairs)
        return _l1(x, y)

    losses = make_cheap_losses(perceptual, metric=_l1)
    config = PipelineConfig(generator=tiny_checkpoint, preset="smoke", mode="pti", losses=CHEAP_LOSSES,
                            overrides=(*STEPS, ("stage1.batch_size", 3), ("stage2.lpips_resolution", 128)))
    proc = ItemProcessor(config, losses=losses)
    store = RunStore(str(tmp_path / "s"))
    with caplog.at_level("WARNING", logger="sym3dinv.pipeline"):
        rows = proc.process_many(items, store)
    assert [r.status.value for r in rows] == ["done", "failed", "done"]
    assert "a stage-1 batch of 3 items failed after 1 were written" in caplog.text
    assert rows[1].error_class is not None and "poisoned target" in rows[1].error_message
    assert all((tmp_path / "s" / rows[i].item_dir).is_dir() for i in (0, 2))
    # head0 was written from the batch before head1 failed: one committed attempt, not two
    assert len(store.committed_attempts(rows[0].id)) == 1


def test_out_of_memory_splits_the_batch_in_halves(folder: Path, tiny_checkpoint: str, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A device budget of 4 renders per loss call (the real CUDA OOM class past it): a stage-1 batch of 3
    images (6 renders with their mirror views) does not fit, its halves (1 + 2) do; every item finishes."""

    def perceptual(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.numel() * 4} bytes")
        return _l1(x, y)

    items = [i for i in _ordered(folder) if Path(i.uri).name.startswith("head")]
    losses = make_cheap_losses(perceptual, metric=_l1)
    config = PipelineConfig(generator=tiny_checkpoint, preset="smoke", mode="spi", losses=CHEAP_LOSSES,
                            overrides=(*STEPS, ("stage1.batch_size", 3)))
    events: list[int] = []
    with caplog.at_level("INFO", logger="sym3dinv"):
        rows = ItemProcessor(config, losses=losses).process_many(
            items, RunStore(str(tmp_path / "s")), progress=lambda stage, step, *_: events.append(step))
    assert [r.status.value for r in rows] == ["done"] * 3
    assert "out of memory in a stage-1 batch of 3 items after 0 were written; splitting it" in caplog.text
    assert "out of memory on a batch of 3; retrying as 1 + 2" in caplog.text  # batching.run_splitting
    assert events == [0, 1, 0, 1] + [0, 1, 0, 1, 0, 1]  # stage 1 of [head0], stage 2, then [head1, head2]


def test_pool_groups_shrink_to_an_even_share() -> None:
    from tasks.actors import PoolSpec, items_per_call

    spec = PoolSpec(num_actors=2, items_per_call=4)
    assert [spec.group_size(q) for q in (16, 8, 7, 5, 2, 1)] == [4, 4, 4, 3, 1, 1]
    assert PoolSpec(num_actors=2).group_size(16) == 1
    assert items_per_call(0, 1.0, 4) == 4 and items_per_call(0, 0.0, 4) == 1 and items_per_call(3, 0.0, 4) == 3
