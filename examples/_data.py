"""Deterministic data for the example jobs, made on first use and cached.

The cache lives under `$IOPROF_DATA_DIR`, or else `~/.cache/ioprof/examples`. Each data set is a
directory holding its TFRecord shards and, written last, `COMPLETE.json` (file names and sizes).
A set is built in a temporary sibling directory and renamed into place in one step, so a killed
run never leaves a directory that looks complete; a set whose files do not match its
`COMPLETE.json` is rebuilt. Two jobs making the same set at once each build their own copy and
the first rename wins (a killed build's temporary directory is removed an hour later). Nothing
here needs the network.

Sets (`name`: what each record holds):
- `jpeg`: `image` = a 256x256x3 JPEG (quality 90) of smooth gradients, blobs and noise;
  `label` = int64 in [0, 10). 1024 images in 8 shards (~30 MB). `jpeg-tiny`: 128 in 4 shards.
- `raw`: `image` = 64x64x3 uint8 pixels, un-encoded (12,288 bytes); `label` as above.
  4096 records in 8 shards (~52 MB). `raw-tiny`: 512 in 4 shards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

VERSION = 1  # bump when the content of a set changes: old caches are then ignored
NUM_CLASSES = 10
JPEG_SIZE = 256
RAW_SIZE = 64

_SETS = {
    # name: (kind, records, shards)
    "jpeg": ("jpeg", 1024, 8),
    "jpeg-tiny": ("jpeg", 128, 4),
    "raw": ("raw", 4096, 8),
    "raw-tiny": ("raw", 512, 4),
}


def data_root() -> Path:
    """The cache directory (created on first use)."""
    env = os.environ.get("IOPROF_DATA_DIR")
    root = Path(env) if env else Path.home() / ".cache" / "ioprof" / "examples"
    root.mkdir(parents=True, exist_ok=True)
    return root


def set_dir(name: str) -> Path:
    return data_root() / f"{name}-v{VERSION}"


def _complete_files(directory: Path) -> list[Path] | None:
    """The shard paths of a complete set, or None if it is missing or incomplete."""
    try:
        manifest = json.loads((directory / "COMPLETE.json").read_text())
        files = [directory / f["name"] for f in manifest["files"]]
        sizes = [f["size"] for f in manifest["files"]]
        if all(p.stat().st_size == size for p, size in zip(files, sizes, strict=True)):
            return files
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _image(rng, size: int, label: int):
    """A structured random image: two gradients, a few blobs whose hue follows the label,
    and pixel noise (JPEG then has real work to do, and each image differs)."""
    import numpy as np

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    img = np.empty((size, size, 3), np.float32)
    base = np.cos(angle) * x + np.sin(angle) * y
    for c in range(3):
        img[..., c] = 80 + 100 * base * rng.uniform(0.3, 1.0) + 40 * np.sin(
            2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y + rng.uniform()))
    hue = np.array([np.cos(label), np.cos(label + 2.1), np.cos(label + 4.2)], np.float32)
    for _ in range(4):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        mask = ((x - cx) ** 2 + (y - cy) ** 2) < r * r
        img[mask] += 70 * hue
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _build(name: str, directory: Path) -> None:
    import numpy as np
    import tensorflow as tf

    kind, records, shards = _SETS[name]
    rng = np.random.default_rng(1234 + VERSION)
    per_shard = records // shards
    entries = []
    for shard in range(shards):
        fname = f"{kind}-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(directory / fname)) as writer:
            for _ in range(per_shard):
                label = int(rng.integers(NUM_CLASSES))
                if kind == "jpeg":
                    pixels = _image(rng, JPEG_SIZE, label)
                    payload = tf.io.encode_jpeg(pixels, quality=90).numpy()
                else:
                    payload = _image(rng, RAW_SIZE, label).tobytes()
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                }))
                writer.write(example.SerializeToString())
        entries.append({"name": fname, "size": (directory / fname).stat().st_size})
    manifest = {"set": name, "version": VERSION, "records": per_shard * shards,
                "files": entries}
    tmp = directory / "COMPLETE.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, directory / "COMPLETE.json")


def ensure(name: str) -> list[str]:
    """The shard file paths of data set `name`, made first if missing or incomplete."""
    if name not in _SETS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(_SETS)}")
    final = set_dir(name)
    files = _complete_files(final)
    if files is not None:
        return [str(p) for p in files]
    for stale in final.parent.glob(f".{final.name}.building-*"):  # left by killed runs
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    try:
        building.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
        _build(name, building)
        if final.exists() and _complete_files(final) is None:
            shutil.rmtree(final, ignore_errors=True)  # incomplete leftovers of an old run
        # If another process finished first, the rename fails; its copy is checked below.
        with contextlib.suppress(OSError):
            os.rename(building, final)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    files = _complete_files(final)
    if files is None:
        raise RuntimeError(f"could not make data set {name} in {final}")
    return [str(p) for p in files]


def record_count(name: str) -> int:
    return _SETS[name][1] // _SETS[name][2] * _SETS[name][2]


if __name__ == "__main__":
    import sys

    for set_name in sys.argv[1:] or list(_SETS):
        t0 = time.perf_counter()
        paths = ensure(set_name)
        size = sum(os.path.getsize(p) for p in paths)
        print(f"{set_name}: {len(paths)} files, {size / 1e6:.1f} MB, "
              f"{time.perf_counter() - t0:.1f} s -> {Path(paths[0]).parent}")
