"""Learn edit directions from (latent, attribute) pairs: closed-form ridge regression, numpy only.

For each target attribute, ridge regression ``y ~ X @ beta`` on centred latents (the mean over layers,
``[w_dim]``, or every layer flattened, ``[num_ws * w_dim]``) gives ``beta``; the direction is
``beta / |beta|``. With few samples and 512+ dimensions the fit runs in the dual (kernel) form: one
eigen-decomposition of ``X X^T`` serves every ridge strength, and the leave-one-out residuals
``(y - H y) / (1 - diag H)`` pick it (no hyper-parameter to set by hand).

Conditional manipulation (InterFaceGAN): a direction may be projected onto the orthogonal complement of
the other attributes' directions, so moving along it leaves their *linear* predictions unchanged
(e.g. face width without changing hair colour, although the training identities' attributes are
not exactly independent).

Scale: ``latent_per_std`` is the distance along the final direction that moves the fitted linear
prediction by one standard deviation of the attribute (``std(y) / (beta . d)``), so a learned
direction saved as ``d * latent_per_std`` has strengths in attribute standard deviations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from sym3dinv.errors import ConfigError

DEFAULT_SET = "synthheads_attributes.npz"
DEFAULT_TARGETS: tuple[str, ...] = ("hair_lightness", "skin_lightness", "parting_side")
"""Attributes learned when none are named: the ones the default generator's latents encode linearly and
the meters read back reliably (docs/editing.md)."""
CONDITION_ON: tuple[str, ...] = ("hair_lightness", "skin_lightness", "parting_side", "face_width")
"""Attributes every learned direction is held orthogonal to (besides itself), unless unconditional."""
ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 33))
"""Ridge strengths tried, relative to the mean eigenvalue of the centred Gram matrix."""


@dataclass(frozen=True)
class AttributeSet:
    """Latents of SynthHeads identities with their ground-truth attributes (``sym3dinv edit build-attribute-set``)."""

    seeds: np.ndarray  # [N] int
    latents: np.ndarray  # [N, w_dim] (w) or [N, num_ws, w_dim] (w+), float32
    attribute_names: tuple[str, ...]
    attributes: np.ndarray  # [N, A] float64
    meter_names: tuple[str, ...] = ()
    meters: np.ndarray | None = None  # [N, M]: meters of the generator's renders of the latents
    meta: Mapping[str, object] = field(default_factory=dict)

    def attribute(self, name: str) -> np.ndarray:
        if name not in self.attribute_names:
            raise ConfigError(f"unknown attribute {name!r}; known: {', '.join(self.attribute_names)}")
        return self.attributes[:, self.attribute_names.index(name)]

    def meter(self, name: str) -> np.ndarray:
        if self.meters is None or name not in self.meter_names:
            raise ConfigError(f"no meter {name!r} in this attribute set")
        return self.meters[:, self.meter_names.index(name)]

    def subset(self, index: np.ndarray | Sequence[int]) -> AttributeSet:
        idx = np.asarray(index)
        return AttributeSet(self.seeds[idx], self.latents[idx], self.attribute_names, self.attributes[idx],
                            self.meter_names, None if self.meters is None else self.meters[idx], self.meta)

    def save(self, path: str | Path) -> None:
        arrays = {"seeds": self.seeds.astype(np.int64), "latents": self.latents.astype(np.float32),
                  "attribute_names": np.array(self.attribute_names, dtype=str),
                  "attributes": self.attributes.astype(np.float64),
                  "meta": np.array(json.dumps(dict(self.meta), sort_keys=True))}
        if self.meters is not None:
            arrays["meter_names"] = np.array(self.meter_names, dtype=str)
            arrays["meters"] = self.meters.astype(np.float64)
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        tmp.replace(p)


def default_set_path() -> Path:
    """The attribute set shipped in the package (``sym3dinv/edit/data/``)."""
    return Path(str(resources.files("sym3dinv.edit") / "data" / DEFAULT_SET))


def load_attribute_set(path: str | Path | None = None) -> AttributeSet:
    """Read an attribute set (``.npz``, never unpickled); None = the shipped SynthHeads set."""
    p = Path(path) if path is not None else default_set_path()
    if not p.is_file():
        raise ConfigError(f"attribute set {p} does not exist (make one with `sym3dinv edit build-attribute-set`)")
    try:
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{p}: not an attribute set ({exc})") from exc
    missing = {"seeds", "latents", "attribute_names", "attributes"} - set(d)
    if missing:
        raise ConfigError(f"{p}: missing arrays {sorted(missing)}")
    lat = d["latents"].astype(np.float32)
    if lat.ndim not in (2, 3) or lat.shape[0] != d["attributes"].shape[0]:
        raise ConfigError(f"{p}: latents {lat.shape} do not match attributes {d['attributes'].shape}")
    meta = json.loads(str(d["meta"])) if "meta" in d else {}
    return AttributeSet(seeds=d["seeds"].astype(np.int64), latents=lat,
                        attribute_names=tuple(str(x) for x in d["attribute_names"]),
                        attributes=d["attributes"].astype(np.float64),
                        meter_names=tuple(str(x) for x in d.get("meter_names", ())),
                        meters=d["meters"].astype(np.float64) if "meters" in d else None, meta=meta)


@dataclass(frozen=True)
class RidgeFit:
    beta: np.ndarray  # [D]
    intercept: float
    alpha: float  # chosen ridge strength (absolute)
    r2_loo: float  # leave-one-out R^2


def fit_ridge(X: np.ndarray, y: np.ndarray, alphas: Sequence[float] = ALPHAS) -> RidgeFit:
    """Ridge regression with the strength chosen by exact leave-one-out error (dual form, O(N^3))."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = X.shape[0]
    if n < 3 or y.shape != (n,):
        raise ConfigError(f"need at least 3 samples with one label each, got X {X.shape}, y {y.shape}")
    if np.std(y) == 0:
        raise ConfigError("the attribute is constant over the samples; nothing to learn")
    xm, ym = X.mean(0), y.mean()
    Xc, yc = X - xm, y - ym
    K = Xc @ Xc.T
    s, U = np.linalg.eigh(K)
    s = np.clip(s, 0.0, None)
    scale = float(s.mean()) or 1.0
    uy = U.T @ yc
    best: tuple[float, float] | None = None
    for a in alphas:
        lam = a * scale
        f = s / (s + lam)
        h_diag = (U**2) @ f + 1.0 / n  # the intercept's leverage (centring) adds 1/n
        resid = (yc - U @ (f * uy)) / np.maximum(1.0 - h_diag, 1e-9)
        err = float(np.mean(resid**2))
        if best is None or err < best[1]:
            best = (lam, err)
    assert best is not None
    lam, err = best
    beta = Xc.T @ (U @ (uy / (s + lam)))
    return RidgeFit(beta=beta, intercept=float(ym - xm @ beta), alpha=lam, r2_loo=1.0 - err / float(np.var(y)))


@dataclass(frozen=True)
class LearnedDirection:
    """One learned direction: unit ``direction`` ([w_dim] or [num_ws, w_dim]) and its scale."""

    name: str
    direction: np.ndarray
    latent_per_std: float
    """Distance along ``direction`` that moves the linear prediction of the attribute by one std."""
    attribute_std: float
    r2_loo: float
    """Leave-one-out R^2 of the ridge fit: how linearly the latents encode the attribute."""
    cosine_to_raw: float
    """Cosine between the final (orthogonalised) direction and the plain ridge direction."""
    orthogonal_to: tuple[str, ...] = ()

    def scaled(self) -> np.ndarray:
        """``direction * latent_per_std``: strength 1 = +1 standard deviation of the attribute."""
        return (self.direction * self.latent_per_std).astype(np.float32)

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.direction.shape), "latent_per_std": self.latent_per_std,
                "attribute_std": self.attribute_std, "r2_loo": self.r2_loo, "cosine_to_raw": self.cosine_to_raw,
                "orthogonal_to": list(self.orthogonal_to)}


def latent_features(latents: np.ndarray, per_layer: bool = False) -> np.ndarray:
    """[N, D] regression inputs: the mean over layers (default) or every layer flattened."""
    lat = np.asarray(latents, dtype=np.float64)
    if lat.ndim == 2:
        if per_layer:
            raise ConfigError("per-layer directions need W+ latents [N, num_ws, w_dim]; this set holds w [N, w_dim]")
        return lat
    return lat.reshape(lat.shape[0], -1) if per_layer else lat.mean(1)


def orthogonalise(d: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """``d`` minus its projection onto span(others) (least squares, so others need not be orthogonal)."""
    if not others:
        return d
    N = np.stack([o.reshape(-1) for o in others], 1)
    coef, *_ = np.linalg.lstsq(N, d.reshape(-1), rcond=None)
    return (d.reshape(-1) - N @ coef).reshape(d.shape)


def learn_directions(
    latents: np.ndarray,
    attributes: Mapping[str, np.ndarray],
    *,
    targets: Sequence[str] | None = None,
    conditional: bool = True,
    per_layer: bool = False,
) -> dict[str, LearnedDirection]:
    """Directions for ``targets`` (default: every attribute given). With ``conditional`` each one is
    orthogonalised against the ridge directions of *all other* attributes in ``attributes`` (so pass the
    attributes to hold fixed there too). Returns name -> :class:`LearnedDirection`."""
    names = list(targets if targets is not None else attributes)
    unknown = [n for n in names if n not in attributes]
    if unknown:
        raise ConfigError(f"unknown attributes {unknown}; known: {', '.join(attributes)}")
    X = latent_features(latents, per_layer)
    lat = np.asarray(latents)
    shape = (lat.shape[1], lat.shape[2]) if per_layer else (lat.shape[-1],)
    fits = {n: fit_ridge(X, np.asarray(y, dtype=np.float64)) for n, y in attributes.items()}
    raw = {n: f.beta / np.linalg.norm(f.beta) for n, f in fits.items()}
    out = {}
    for n in names:
        others = [m for m in attributes if m != n] if conditional else []
        d = orthogonalise(raw[n], [raw[m] for m in others])
        norm = float(np.linalg.norm(d))
        if norm < 1e-8:
            raise ConfigError(f"direction {n!r} vanishes after removing the other attributes' directions")
        d = d / norm
        gain = float(fits[n].beta @ d)  # change of the linear prediction per unit latent distance along d
        std = float(np.std(attributes[n]))
        out[n] = LearnedDirection(
            name=n, direction=d.reshape(shape).astype(np.float32),
            latent_per_std=std / gain if abs(gain) > 1e-12 else float("inf"), attribute_std=std,
            r2_loo=fits[n].r2_loo, cosine_to_raw=float(d @ raw[n]), orthogonal_to=tuple(others))
    return out


def learn_from_set(aset: AttributeSet | None = None, targets: Sequence[str] | None = None, *,
                   condition_on: Sequence[str] = CONDITION_ON, conditional: bool = True,
                   per_layer: bool = False, exclude: Sequence[int] = ()) -> dict[str, LearnedDirection]:
    """:func:`learn_directions` on an attribute set (default: the shipped one) without rows ``exclude``:
    ``targets`` (default :data:`DEFAULT_TARGETS`), each held orthogonal to the others and to
    ``condition_on`` when ``conditional``."""
    aset = aset if aset is not None else load_attribute_set()
    keep = np.setdiff1d(np.arange(len(aset.seeds)), np.asarray(exclude, dtype=int))
    sub = aset.subset(keep)
    names = list(targets or DEFAULT_TARGETS)
    fitted = list(dict.fromkeys([*names, *(condition_on if conditional else ())]))
    return learn_directions(sub.latents, {n: sub.attribute(n) for n in fitted}, targets=names,
                            conditional=conditional, per_layer=per_layer)
