"""Deterministic movie-review text files for `text_from_scratch.py` (no network).

Made on first use beside `_vdata.py`'s sets (`$IOPROF_DATA_DIR`, else
`~/.cache/ioprof/examples`), with the same guarantees: built in a temporary sibling directory,
renamed into place in one step, `COMPLETE.json` (file names and sizes) written last and checked
on every use.

Sets (the aclImdb layout that `keras.utils.text_dataset_from_directory` reads, one folder per
class, `neg/` and `pos/`, one review per `.txt` file):
- `reviews`: 2 x 2000 reviews; `reviews-tiny`: 2 x 200.
Each review is 120-360 words drawn (Zipf-like) from a vocabulary of 6000 made-up words, with
sentences ending in `.`, `!` or `?`, commas, capitals and `<br /><br />` paragraph breaks as in
IMDB's reviews; a few class words ("great" / "awful" ...) make the label learnable.

`python examples/validation/_vtext.py [name ...]` makes them ahead of time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/: _data.py, which _vdata uses

import _vdata  # noqa: E402

VERSION = 1
CLASSES = ("neg", "pos")
_SETS = {"reviews": 2000, "reviews-tiny": 200}  # name: reviews per class
_CLASS_WORDS = (("awful", "boring", "bad", "waste", "dull", "worst"),
                ("great", "wonderful", "good", "loved", "superb", "best"))


def _vocabulary(rng, size: int) -> list[str]:
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ch"]
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(syllables[int(i)] for i in rng.integers(0, len(syllables), n)))
    return sorted(words)


def _review(rng, vocab: list[str], weights, label: int) -> str:
    n = int(rng.integers(120, 361))
    words = [vocab[i] for i in rng.choice(len(vocab), n, p=weights)]
    for pos in rng.choice(n, max(2, n // 40), replace=False):  # the learnable part
        words[int(pos)] = str(rng.choice(_CLASS_WORDS[label] if rng.random() < 0.8
                                         else _CLASS_WORDS[1 - label]))
    out, sentence = [], []
    for word in words:
        sentence.append(word)
        if rng.random() < 0.07:
            sentence[-1] += ","
        if len(sentence) >= 6 and rng.random() < 0.12:
            text = " ".join(sentence)
            out.append(text[0].upper() + text[1:] + str(rng.choice([".", ".", ".", "!", "?"])))
            sentence = []
            if rng.random() < 0.15:
                out.append("<br /><br />")
    if sentence:
        out.append(" ".join(sentence) + ".")
    return " ".join(out)


def _build(directory: Path, per_class: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(2468 + VERSION)
    vocab = [str(w) for w in rng.permutation(_vocabulary(rng, 6000))]
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    names = []
    for cls in CLASSES:
        (directory / cls).mkdir()
    for i in range(per_class * len(CLASSES)):
        label = i % len(CLASSES)
        name = f"{CLASSES[label]}/{i // 2}_{int(rng.integers(1, 5)) + 6 * label}.txt"
        (directory / name).write_text(_review(rng, vocab, weights, label))
        names.append(name)
    return names


def ensure(name: str) -> Path:
    """The directory of set `name`, made first if missing or incomplete (`_vdata.build_set`:
    the same atomic build as the other validation sets)."""
    per_class = _SETS[name]
    return _vdata.build_set(name, VERSION, lambda d: _build(d, per_class))


if __name__ == "__main__":
    for set_name in sys.argv[1:] or list(_SETS):
        start = time.perf_counter()
        print(set_name, ensure(set_name), f"{time.perf_counter() - start:.1f} s")
