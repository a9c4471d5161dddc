"""The tagger's conversion rewrites musicnn's front end to keep LiteRT's arena small: the numpy
helpers that rewrite rests on (scripts/convert_music_tagger.py) must compute the same numbers as the
plain formulation, and the shipped model must keep its small maps. The conversion itself
(TensorFlow) checks the whole graph against the plain one and against musicnn's own graph on real
clips; these checks need no TensorFlow."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from convert_music_tagger import blocks_kernel, max_then_affine, signed_kernel


def sliding(x: np.ndarray, k: np.ndarray, n_out: int) -> np.ndarray:
    """y[t] = sum_i k[i] x[t + i]: musicnn's kernel sliding over x (length, ) -> (n_out, out)."""
    return np.stack([x[t:t + len(k)] @ k for t in range(n_out)])


@pytest.mark.parametrize(("taps", "block"), [(128, 8), (64, 8), (32, 8), (38, 6), (5, 4), (7, 1)])
def test_a_kernel_over_blocks_is_the_sliding_kernel(taps, block):
    rng = np.random.default_rng(taps + block)
    k = rng.normal(size=(taps, 3)).astype(np.float32)
    big = blocks_kernel(k, block)
    n_blocks = big.shape[0]
    n_out = 187
    out_blocks = -(-n_out // block)
    x = rng.normal(size=(out_blocks + n_blocks - 1) * block).astype(np.float32)
    blocks = x.reshape(-1, block)  # (time blocks, frame of the block): the graph's reshape
    # The graph's VALID convolution over blocks, then its reshape of (p, out) channels to frames.
    y = np.stack([np.einsum("bq,bqo->o", blocks[j:j + n_blocks], big) for j in range(out_blocks)])
    y = y.reshape(out_blocks * block, 3)[:n_out]
    np.testing.assert_allclose(y, sliding(x, k, n_out), rtol=1e-5, atol=1e-4)


def test_the_max_of_a_batch_normalised_relu_is_taken_before_the_batch_norm():
    # musicnn: a convolution, ReLU, batch norm, then the max over frequency. Scales of both signs
    # (musicnn's front end has 170 of 204 negative in one layer) and one of zero.
    rng = np.random.default_rng(17)
    x = rng.normal(size=(187, 6, 20)).astype(np.float32)  # (frames, bands, unfolded taps)
    k = rng.normal(scale=0.2, size=(20, 8)).astype(np.float32)
    bias = rng.normal(1.5, 1.0, size=8).astype(np.float32)  # the ReLU mostly open, not always
    scale = np.array([1.5, -0.7, 0.2, -2.0, 0.0, 3.0, -0.01, 0.9], np.float32)
    shift = rng.normal(size=8).astype(np.float32)
    plain = (np.maximum(x @ k + bias, 0) * scale + shift).max(axis=1)  # (frames, 8)
    rewritten = max_then_affine((x @ signed_kernel(k, scale)).max(axis=1), bias, scale, shift)
    np.testing.assert_allclose(rewritten, plain, rtol=1e-5, atol=1e-5)


def test_the_shipped_tagger_has_no_map_of_more_than_3_mb():
    # The plain formulation has 9 MB maps (the 128 frames unfolded, three copies of the 7x38
    # kernel's output), and LiteRT's arena held some 25 MB of them: a re-conversion that loses
    # the rewrite fails here.
    from frame_daemon.music.audio.tagger import MusicTagger

    tensors = MusicTagger.load().interpreter.get_tensor_details()
    largest = max(tensors, key=lambda t: np.prod(t["shape"]) * np.dtype(t["dtype"]).itemsize)
    size = np.prod(largest["shape"]) * np.dtype(largest["dtype"]).itemsize
    assert size <= 3e6, (largest["name"], list(largest["shape"]))
