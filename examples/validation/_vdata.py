"""Deterministic data and slow storage for the validation jobs (no network).

The sets live beside `examples/_data.py`'s (`$IOPROF_DATA_DIR`, else `~/.cache/ioprof/examples`),
one directory per set (`<name>-v1/`), made on first use with the same guarantees: built in a
temporary sibling directory, renamed into place in one step, `COMPLETE.json` (file names and
sizes) written last and checked on every use.

Sets:
- `photos` / `photos-tiny`: a folder of JPEG files, one sub-folder per class (`cat/`, `dog/`),
  as `keras.utils.image_dataset_from_directory` expects (keras-io's Cats vs Dogs layout).
  Each image is 640x480 ("a photo"), JPEG quality 90, made with PIL from `_data._image`'s
  structured noise. 640 images (tiny: 96).
- `records`: 64 TFRecord shards of 32 `Example`s each (`image`: 64x64x3 uint8 un-encoded,
  `label`), for `interleave(TFRecordDataset, ...)` over many files (tiny: 8 shards).

`python examples/validation/_vdata.py [name ...]` makes them ahead of time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/: _data.py, throttlefs.py

import _data  # noqa: E402

VERSION = 1
CLASSES = ("cat", "dog")
# name: (kind, count, shards or image size)
_SETS = {
    "photos": ("photos", 640, (640, 480)),
    "photos-tiny": ("photos", 96, (640, 480)),
    "records": ("records", 64 * 32, 64),
    "records-tiny": ("records", 8 * 32, 8),
}


def _build_photos(directory: Path, count: int, size: tuple[int, int]) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(4321 + VERSION)
    names = []
    for cls in CLASSES:
        (directory / cls).mkdir()
    for i in range(count):
        label = i % len(CLASSES)
        square = _data._image(rng, max(size), label * 5)  # hue differs by class
        img = Image.fromarray(square).resize(size, Image.BILINEAR)
        name = f"{CLASSES[label]}/{CLASSES[label]}.{i:05d}.jpg"
        img.save(directory / name, format="JPEG", quality=90)
        names.append(name)
    return names


def _build_records(directory: Path, count: int, shards: int) -> list[str]:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(5678 + VERSION)
    names = []
    per_shard = count // shards
    for shard in range(shards):
        name = f"train-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(directory / name)) as writer:
            for _ in range(per_shard):
                label = int(rng.integers(_data.NUM_CLASSES))
                pixels = _data._image(rng, _data.RAW_SIZE, label).tobytes()
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                }))
                writer.write(example.SerializeToString())
        names.append(name)
    return names


def ensure(name: str) -> Path:
    """The directory of set `name`, made first if missing or incomplete."""
    kind, count, extra = _SETS[name]
    if kind == "photos":
        return build_set(name, VERSION, lambda d: _build_photos(d, count, extra))
    return build_set(name, VERSION, lambda d: _build_records(d, count, extra))


def build_set(name: str, version: int, build) -> Path:
    """`validation-<name>-v<version>` under the data root, made once by `build(folder)` (the
    files' names, relative) in a temporary folder renamed into place when complete, so a
    killed build never leaves a set that looks whole (`COMPLETE.json` lists every file)."""
    final = _data.data_root() / f"validation-{name}-v{version}"
    if _data._complete_files(final) is not None:
        return final
    for stale in final.parent.glob(f".{final.name}.building-*"):  # left by killed runs
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    try:
        building.chmod(0o755)
        names = build(building)
        manifest = {"set": name, "version": version, "count": len(names), "files": [
            {"name": n, "size": (building / n).stat().st_size} for n in names]}
        (building / "COMPLETE.json").write_text(json.dumps(manifest, indent=1))
        if final.exists() and _data._complete_files(final) is None:
            shutil.rmtree(final, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rename(building, final)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    if _data._complete_files(final) is None:
        raise RuntimeError(f"could not make data set {name} in {final}")
    return final


class SlowStorage:
    """The directory `source` seen through `examples/throttlefs.py` at `mbps` MB/s (a FUSE
    mount in a temporary directory, in its own session; unmounted by `close()`, or by the
    mount itself when this process is gone)."""

    def __init__(self, source: Path, mbps: float):
        import throttlefs

        self.dir = tempfile.mkdtemp(prefix="ioprof-validation-")
        self.path = os.path.join(self.dir, "mnt")
        self.stats_path = os.path.join(self.dir, "stats.json")
        os.mkdir(self.path)
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE.parent / "throttlefs.py"), str(source), self.path,
             "--mbps", str(mbps), "--watch-pid", str(os.getpid()), "--stats",
             self.stats_path, "--cleanup-dir", self.dir],
            stdin=subprocess.DEVNULL, start_new_session=True)
        self._unmount = throttlefs.unmount
        self.stats: dict | None = None
        self.closed = False
        throttlefs.wait_mounted(self.path, self.proc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if os.path.ismount(self.path) and not self._unmount(self.path):
            self._unmount(self.path, lazy=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError, ValueError), open(self.stats_path) as fh:
            self.stats = json.load(fh)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    for set_name in sys.argv[1:] or list(_SETS):
        start = time.perf_counter()
        print(set_name, ensure(set_name), f"{time.perf_counter() - start:.1f} s")
