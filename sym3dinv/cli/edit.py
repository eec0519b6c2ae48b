"""`sym3dinv edit ...`: latent edit directions (learn them from latents and labels, render edits of a run
store's items). See docs/editing.md."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Latent edit directions: learn them from latents and labels, render edits.")

_SET = typer.Option(None, "--set", help="Attribute set .npz (default: the shipped SynthHeads set).")
_ENDPOINT = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint; credentials come from AWS env vars.")
_SET_OUT = typer.Argument(..., help="Output .npz (latents + ground-truth attributes + seeds + meters).")
_DIR_OUT = typer.Argument(..., help="Folder for <attribute>.npy directions and directions.json.")
_ATTRIBUTE = typer.Option([], "--attribute", "-a", help="Attribute to learn (repeat or comma-separate; "
                          "default hair_lightness, skin_lightness, parting_side).")
_DIRECTION = typer.Option([], "--direction", "-d", help="User direction: PATH.npy or NAME=PATH.npy "
                          "(float, w_dim or num_ws x w_dim values; repeat).")
_LEARNED = typer.Option([], "--learned", "-l", help="Learned attribute direction from the attribute "
                        "set, strength in attribute std (repeat or comma-separate).")
_STRENGTH = typer.Option([], "--strength", "-s", help="Strengths to render (repeat; 0 is always "
                         "added). Default -2 and 2.")
_VIEW = typer.Option([], "--view", help="Camera 'yaw,pitch' in radians (repeat); default: the item's views.")
_IDS = typer.Option([], "--id", help="Only these item ids (or id prefixes).")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _targets(attributes: list[str]) -> list[str] | None:
    out = [a.strip() for s in attributes for a in s.split(",") if a.strip()]
    return out or None


@app.command("build-attribute-set")
def build_attribute_set(
    out: Path = _SET_OUT,
    identities: int = typer.Option(96, "--identities", help="How many SynthHeads identities."),
    first_seed: int = typer.Option(0, "--first-seed", help="Seeds first_seed .. first_seed + identities - 1."),
    method: str = typer.Option("fit", "--method", help="fit (w vs. frontal render + depth), invert (stage-1 W+) or codes (the w training learnt; embedded generators that ship codes)."),
    steps: int = typer.Option(60, "--steps", help="Optimisation steps per identity batch."),
    batch: int = typer.Option(8, "--batch", help="Identities optimised together."),
    generator: str = typer.Option("synthheads", "--generator", help="Generator (default: the embedded one)."),
    threads: int = typer.Option(0, "--threads", help="torch threads (0 = torch's default)."),
    meters_only: bool = typer.Option(False, "--meters-only", help="Keep OUT's latents; recompute its meters only."),
) -> None:
    """Latents of SynthHeads identities with their ground-truth attributes (minutes on CPU)."""
    import time

    from sym3dinv.edit.build import build_attribute_set as build
    from sym3dinv.errors import ConfigError
    from sym3dinv.perf import cpu_numerics

    cpu_numerics(threads if threads > 0 else None)
    t0 = time.perf_counter()
    if meters_only:
        from sym3dinv.edit.build import remeasure
        from sym3dinv.edit.learn import load_attribute_set

        try:
            remeasure(load_attribute_set(out)).save(out)
        except ConfigError as exc:
            raise _fail(exc) from exc
        typer.echo(f"recomputed the meters of {out} ({time.perf_counter() - t0:.0f} s)")
        return
    try:
        aset = build(list(range(first_seed, first_seed + identities)), generator=generator, method=method,
                     steps=steps, batch=batch,
                     progress=lambda d, n, msg: typer.echo(f"  {d}/{n} identities ({msg})", err=True))
    except ConfigError as exc:
        raise _fail(exc) from exc
    aset.save(out)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB, {len(aset.seeds)} identities, "
               f"{time.perf_counter() - t0:.0f} s)")


@app.command()
def learn(
    out: Path = _DIR_OUT,
    attribute: list[str] = _ATTRIBUTE,
    attribute_set: Path = _SET,
    per_layer: bool = typer.Option(False, "--per-layer", help="Per-layer (num_ws x w_dim) directions (W+ sets only)."),
    independent: bool = typer.Option(False, "--independent", help="Do not orthogonalise against the other attributes."),
    unit: bool = typer.Option(False, "--unit", help="Save unit-norm directions (default: strength 1 = +1 std)."),
) -> None:
    """Learn directions with ridge regression (conditional: orthogonal to the other attributes)."""
    import numpy as np

    from sym3dinv.edit.learn import learn_from_set, load_attribute_set
    from sym3dinv.errors import ConfigError

    try:
        aset = load_attribute_set(attribute_set)
        dirs = learn_from_set(aset, _targets(attribute), conditional=not independent, per_layer=per_layer)
    except ConfigError as exc:
        raise _fail(exc) from exc
    out.mkdir(parents=True, exist_ok=True)
    summary = {"attribute_set": str(attribute_set or "shipped"), "identities": int(len(aset.seeds)),
               "scaled": not unit, "directions": []}
    for name, d in dirs.items():
        np.save(out / f"{name}.npy", d.direction if unit else d.scaled())
        summary["directions"].append(d.summary())
        typer.echo(f"{name:<16} R2(loo)={d.r2_loo:+.3f}  latent/std={d.latent_per_std:.3f}  "
                   f"cos(raw)={d.cosine_to_raw:.3f}  -> {out / (name + '.npy')}")
    (out / "directions.json").write_text(json.dumps(summary, indent=1))


def _parse_direction(spec: str) -> tuple[str, str]:
    """``path.npy`` or ``name=path.npy``."""
    name, sep, path = spec.partition("=")
    if not sep:
        path, name = spec, Path(spec).stem
    return name.strip(), path.strip()


@app.command()
def apply(
    store: str = typer.Argument(..., help="Run store with done items (path or URL)."),
    direction: list[str] = _DIRECTION,
    learned: list[str] = _LEARNED,
    strength: list[float] = _STRENGTH,
    name: str = typer.Option("edit", "--name", help="Edit folder: STORE/edits/NAME/."),
    attribute_set: Path = _SET,
    generator: str = typer.Option(None, "--generator", help="Default: the generator the items were inverted with."),
    view: list[str] = _VIEW,
    run: str = typer.Option(None, "--run", help="Only items of this run id."),
    ids: list[str] = _IDS,
    limit: int = typer.Option(None, "--limit", help="At most this many items."),
    endpoint_url: str = _ENDPOINT,
    force: bool = typer.Option(False, "--force", help="Apply even when the generator has another fingerprint "
                               "than the one the items were inverted with (their renders will be off)."),
) -> None:
    """Render edited multi-view sets of a store's items into STORE/edits/NAME/ (the report shows them)."""
    from sym3dinv.edit.apply import apply_to_store
    from sym3dinv.edit.directions import Edit, load_direction
    from sym3dinv.edit.learn import learn_from_set, load_attribute_set
    from sym3dinv.errors import ConfigError
    from sym3dinv.generator import load_generator
    from sym3dinv.store import RunStore, storage_options

    strengths = tuple(strength) or (-2.0, 2.0)
    opts = storage_options(endpoint_url)
    try:
        rs = RunStore.open_existing(store, opts)
        from sym3dinv.edit.apply import done_items, store_generator_source

        rows = done_items(rs, run, ids or None)
        if not rows:
            raise ConfigError(f"no done items to edit in {store}")
        source = generator or store_generator_source(rs, rows[0])
        G = load_generator(source)
        edits, sources = [], {}
        for spec in direction:
            n, path = _parse_direction(spec)
            edits.append(Edit(n, load_direction(path, G.w_dim, G.num_ws), strengths))
            sources[n] = f"user file {Path(path).name}"
        targets = _targets(learned)
        if targets:
            dirs = learn_from_set(load_attribute_set(attribute_set), targets)
            for n, d in dirs.items():
                edits.append(Edit(n, d.scaled(), strengths))
                sources[n] = f"learned from SynthHeads ground truth (R2 {d.r2_loo:.2f}), strength in std"
        if not edits:
            raise ConfigError("give at least one --direction or --learned")
        views = [(float(v.split(",")[0]), float(v.split(",")[1]) if "," in v else 0.0) for v in view] or None
        res = apply_to_store(rs, edits, name=name, generator=source, G=G, views=views, run_id=run,
                             ids=ids or None, limit=limit, sources=sources, force=force,
                             progress=lambda k, n: typer.echo(f"  {k}/{n} items", err=True))
    except ConfigError as exc:
        raise _fail(exc) from exc
    for i, why in res.failed:
        typer.echo(f"failed {i}: {why}", err=True)
    typer.echo(f"{res.items} items, {res.renders} renders -> {rs.url}/{res.folder}")


@app.command()
def evaluate(
    attribute_set: Path = _SET,
    holdout: int = typer.Option(8, "--holdout", help="Last N identities of the set: directions are learned "
                                "without them and applied to them."),
    strength: float = typer.Option(2.0, "--strength", help="Edits at -s and +s (attribute std units)."),
    meter_seeds: int = typer.Option(0, "--meter-seeds", help="Also validate the meters on this many world renders."),
) -> None:
    """JSON: meter/ground-truth correlations and how selective learned edits are (docs/editing.md)."""
    import numpy as np

    from sym3dinv.edit.attributes import METERS, validate_meters
    from sym3dinv.edit.evaluate import edit_effects, meter_std
    from sym3dinv.edit.learn import learn_from_set, load_attribute_set
    from sym3dinv.generator import load_generator

    aset = load_attribute_set(attribute_set)
    n = len(aset.seeds)
    held = list(range(n - holdout, n))
    dirs = learn_from_set(aset, list(METERS), exclude=held)
    G = load_generator(str(aset.meta.get("generator", "synthheads")))
    effects = edit_effects(G, [aset.latents[i] for i in held], {k: d.scaled() for k, d in dirs.items()},
                           meter_std(aset), strength)
    report: dict[str, object] = {
        "identities": n, "held_out": holdout, "strength": strength,
        "directions": {k: d.summary() for k, d in dirs.items()},
        "effects_std_per_unit_strength": effects,
        "generator_meter_vs_gt_r": {m: float(np.corrcoef(aset.meter(m), aset.attribute(m))[0, 1]) for m in METERS},
    }
    if meter_seeds > 0:
        report["world_meter_vs_gt"] = validate_meters(list(range(10_000, 10_000 + meter_seeds)))
    typer.echo(json.dumps(report, indent=1))
