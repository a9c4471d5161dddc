"""Convert musicnn's MSD tagger (TF1 checkpoint in the PyPI wheel `musicnn` 0.1.0) to TFLite, once.

Conversion only: TensorFlow, librosa and musicnn live in their own venv and never at run time.

    python3 -m venv .venv-convert
    .venv-convert/bin/pip install 'tensorflow-cpu==2.21.*' librosa
    # musicnn pins numpy<1.17 and TF 1, tf-keras asks for `tensorflow` (tensorflow-cpu is it)
    .venv-convert/bin/pip install --no-deps musicnn==0.1.0 'tf-keras==2.21.0'
    .venv-convert/bin/python scripts/convert_music_tagger.py --clips /path/to/emotify-dev/audio

What it does:
1. Reads the checkpoint by variable name and rebuilds MSD_musicnn (Pons & Serra, ISMIR 2019 LBD)
   from plain TF ops, batch norm in inference mode (`tf.compat.v1.layers`, which musicnn's own
   graph uses, is gone under Keras 3). The front end is rewritten to keep LiteRT's activation
   arena small (same sums; `max_then_affine`, `blocks_kernel`): batch norm after the max over
   frequency, the temporal kernels as convolutions over blocks of frames, a few bands at a time.
2. Checks the rebuild against musicnn's original graph, run in a child process under tf-keras
   (TF_USE_LEGACY_KERAS=1), on real patches, and the rewritten front end against the plain one
   (`build_model(plain=True)`, op for op musicnn's): max abs difference of the tag probabilities.
3. Checks the numpy front end of frame_daemon.music.audio.tagger against librosa as musicnn calls
   it (float32, and musicnn's own float16 cast), on log-mels and on the final tags.
4. Converts to TFLite as float32, float16 weights, int8 weights (dynamic range) and full int8
   (calibrated on patches of the first half of the clips), measures each against the float TF
   graph on the other half (mean abs error of tag probabilities, Spearman correlation of the
   pooled tag vectors, top-5 agreement), and writes the chosen one with its JSON metadata (the
   mood head in an existing JSON is kept), after printing how it agrees with the model it replaces.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default epsilon
PATCH = 187
N_MELS = 96
TEMPORAL_BLOCK = 8  # frames per block in the temporal convolutions (blocks_kernel)


def checkpoint_prefix() -> str:
    import musicnn
    return os.path.dirname(musicnn.__file__) + "/MSD_musicnn/"


def msd_labels() -> list[str]:
    # musicnn/configuration.py imports nothing heavy; its tagger modules import TF 1 style code.
    from musicnn import configuration
    return list(configuration.MSD_LABELS)


def read_weights(prefix: str) -> dict[str, np.ndarray]:
    import tensorflow as tf
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    names = [n for n in reader.get_variable_to_shape_map()
             if "Adam" not in n and not n.endswith("_power")]
    return {n: reader.get_tensor(n).astype(np.float32) for n in names}


def bn_affine(w: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm `i` in inference mode as x * scale + shift."""
    name = "batch_normalization" + (f"_{i}" if i else "")
    scale = w[f"{name}/gamma"] / np.sqrt(w[f"{name}/moving_variance"] + EPS)
    return scale, w[f"{name}/beta"] - w[f"{name}/moving_mean"] * scale


def signed_kernel(k: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The kernel (..., out) negated in the output channels whose batch-norm scale is negative."""
    return k * np.where(scale < 0, -1.0, 1.0).astype(np.float32)


def max_then_affine(z_signed_max, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                    relu=lambda v: np.maximum(v, 0)):
    """The max over some axis of bn(relu(z + bias)), from the max of the convolution by
    `signed_kernel` over that axis (numpy arrays, or TF tensors with relu=tf.nn.relu).

    musicnn normalises after the ReLU, so the batch norm cannot fold into the convolution, and
    applied to every pixel it makes two more copies of the convolution's output (9 MB each for
    the 7x38 kernel). But a bias, the ReLU and a per-channel affine are monotonic, so they
    commute with the max: rising where the scale is positive; falling where it is negative, where
    the max of the output comes from the minimum of z, which is minus the max of -z. So the graph
    pools the convolution with its kernel negated in those channels, and does the rest on the
    pooled map, which is 59 or 96 times smaller.
    """
    sign = np.where(scale < 0, -1.0, 1.0).astype(np.float32)
    return relu(z_signed_max * sign + bias) * scale + shift


def blocks_kernel(k: np.ndarray, block: int) -> np.ndarray:
    """A 1-D kernel (taps, out) as a convolution over blocks of `block` positions.

    y[t] = sum_i k[i] x[t + i] for t = j * block + p is the sum over blocks b and positions q of
    x[(j + b) * block + q] * k[b * block + q - p]: with the positions of a block as channels, a
    kernel of ceil((taps + block - 1) / block) blocks whose output channels are (p, out). It
    reads the map as it is, where an unfolded copy (96 x 187 x 128 values, 9 MB, for musicnn's
    128-frame kernel) or a direct convolution (XNNPACK keeps a pointer per output pixel and tap)
    would take megabytes. Each output costs n_blocks * block / taps more multiplications, and
    the kernel has `block` times more weights: small blocks for small kernels.
    Returns (n_blocks, block, block * out).
    """
    taps, out = k.shape
    n_blocks = -(-(taps + block - 1) // block)
    big = np.zeros((n_blocks, block, block, out), np.float32)
    for b in range(n_blocks):
        for q in range(block):
            for p in range(block):
                if 0 <= b * block + q - p < taps:
                    big[b, q, p] = k[b * block + q - p]
    return big.reshape(n_blocks, block, block * out)


def build_model(w: dict[str, np.ndarray], plain: bool = False):
    """The MSD_musicnn forward pass in plain TF ops: (N, 187, 96) log-mel -> (N, 50) probabilities.

    `plain=True` is the formulation of musicnn's graph, op for op (batch norm on every pixel,
    then the max over frequency); the default computes the same numbers with a small activation
    arena (see the front end below), and the conversion checks one against the other.
    """
    import tensorflow as tf

    def bn(x, i):
        scale, shift = bn_affine(w, i)
        return x * scale + shift

    def conv_time(x, i):
        # musicnn's mid-end convolves a [7, C] kernel over a (time, C, 1) map: a 1-D convolution
        # over time with C input channels, which is what this is (time, 1, C).
        name = f"conv2d_{i}"
        k = w[f"{name}/kernel"]
        k = k.reshape(k.shape[0], 1, k.shape[1], k.shape[3])
        x = tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]])
        return tf.nn.relu(tf.nn.conv2d(x, k, 1, "VALID") + w[f"{name}/bias"])

    def windows(n_out: int, taps: int) -> np.ndarray:
        return (np.arange(n_out)[:, None] + np.arange(taps)[None, :]).astype(np.int32)

    def kernel_of(i):
        name = "conv2d" + (f"_{i}" if i else "")
        return w[f"{name}/kernel"], w[f"{name}/bias"]

    def plain_conv(u, i, bn_i, max_axis):
        # XNNPACK keeps one pointer per output pixel and kernel tap for a convolution: for musicnn's
        # long (7x38, 7x67, 128x1) kernels on a 187x96 patch, some 75 MB. With the kernel's long
        # side unfolded into channels (`u`, by a gather: the same numbers, copied) the kernels are
        # short; the sums are the same.
        k, b = kernel_of(i)
        k = k.reshape(k.shape[0] if max_axis == 2 else 1, 1, -1, k.shape[3])
        y = bn(tf.nn.relu(tf.nn.conv2d(u, k, 1, "VALID") + b), bn_i)
        return tf.reduce_max(y, axis=max_axis)  # max over frequency: (N, 187, C)

    def plain_front(x):
        padded = tf.pad(x, [[0, 0], [3, 3], [0, 0]])
        f74 = plain_conv(tf.gather(padded, windows(59, 38), axis=2), 0, 1, 2)
        f77 = plain_conv(tf.gather(padded, windows(30, 67), axis=2), 1, 2, 2)
        by_band = tf.pad(tf.transpose(x, [0, 2, 1]), [[0, 0], [0, 0], [63, 64]])  # (N, 96, 314)
        u = tf.gather(by_band, windows(PATCH, 128), axis=2)
        return [f74, f77, plain_conv(u, 2, 3, 1), plain_conv(u[..., 32:96], 3, 4, 1),
                plain_conv(u[..., 48:80], 4, 5, 1)]

    def after_max(z_signed_max, i, bn_i):
        return max_then_affine(z_signed_max, kernel_of(i)[1], *bn_affine(w, bn_i), relu=tf.nn.relu)

    def signed(k, bn_i):
        return signed_kernel(k, bn_affine(w, bn_i)[0])

    def timbral(padded, i, bn_i, n_out, chunks):
        # 7 frames x `taps` bands, "valid" over bands: bands unfolded by a gather ((193, n_out,
        # taps), under 2 MB; a convolution over blocks of bands, as `temporal` does, would multiply
        # these kernels' weights by the block size) and a 7x1 kernel over them, a few bands at a
        # time: each (187, bands, 204) piece is pooled before the next is computed.
        k, _ = kernel_of(i)  # (7, taps, 1, C)
        taps = k.shape[1]
        k = signed(k, bn_i).reshape(k.shape[0], 1, taps, k.shape[3])
        z_max = None
        for part in np.array_split(np.arange(n_out), chunks):
            u = tf.gather(padded, windows(n_out, taps)[part], axis=2)  # (N, 193, bands, taps)
            m = tf.reduce_max(tf.nn.conv2d(u, k, 1, "VALID"), axis=2)
            z_max = m if z_max is None else tf.maximum(z_max, m)
        return after_max(z_max, i, bn_i)

    def temporal(by_band, i, bn_i, offset, block, chunks):
        # `taps` frames x 1 band, "same" over time, as a convolution over blocks of frames
        # (blocks_kernel), a few bands at a time, pooled over the bands as they come.
        k, _ = kernel_of(i)  # (taps, 1, 1, C)
        k = signed(k[:, 0, 0, :], bn_i)
        big = blocks_kernel(k, block)[None]  # (1, n_blocks, block, block * C)
        n_out_blocks = -(-PATCH // block)  # the frames past 187 are dropped
        length = (n_out_blocks + big.shape[1] - 1) * block
        x = by_band[:, :, offset:offset + length]  # (N, 96, length), zero-padded far enough
        x = tf.reshape(x, [-1, N_MELS, length // block, block])
        z_max = None
        for part in np.array_split(np.arange(N_MELS), chunks):
            y = tf.nn.conv2d(x[:, part[0]:part[-1] + 1], big, 1, "VALID")  # (N, bands, blocks, block*C)
            m = tf.reduce_max(y, axis=1)
            z_max = m if z_max is None else tf.maximum(z_max, m)
        z_max = tf.reshape(z_max, [-1, n_out_blocks * block, k.shape[1]])[:, :PATCH]
        return after_max(z_max, i, bn_i)

    def small_front(x):
        padded = tf.pad(x, [[0, 0], [3, 3], [0, 0]])
        f74 = timbral(padded, 0, 1, 59, 4)
        f77 = timbral(padded, 1, 2, 30, 2)
        # The 128-frame kernel's padding is 63 frames before, 64 after; the 64- and 32-frame
        # kernels' windows are the middle of its window (from frame 32 and 48).
        by_band = tf.pad(tf.transpose(x, [0, 2, 1]), [[0, 0], [0, 0], [63, 64 + 64]])
        return [f74, f77] + [temporal(by_band, i, i + 1, offset, TEMPORAL_BLOCK, 4)
                             for i, offset in ((2, 0), (3, 32), (4, 48))]

    @tf.function(input_signature=[tf.TensorSpec([None, PATCH, N_MELS], tf.float32)])
    def model(x):
        x = bn(x, 0)  # (N, 187, 96)
        front = plain_front(x) if plain else small_front(x)
        f = tf.concat(front, axis=2)[:, :, None, :]  # (N, 187, 1, 561)
        c1 = bn(conv_time(f, 5), 6)
        c2 = bn(conv_time(c1, 6), 7) + c1
        c3 = bn(conv_time(c2, 7), 8) + c2
        mid = tf.concat([f, c1, c2, c3], axis=3)[:, :, 0, :]  # (N, 187, 753)
        # musicnn concatenates max and mean pools on a new last axis and flattens: interleaved.
        pooled = tf.reshape(tf.stack([tf.reduce_max(mid, axis=1), tf.reduce_mean(mid, axis=1)],
                                     axis=2), [-1, 2 * 753])
        hidden = bn(tf.nn.relu(tf.matmul(bn(pooled, 9), w["dense/kernel"]) + w["dense/bias"]), 10)
        logits = tf.matmul(hidden, w["dense_1/kernel"]) + w["dense_1/bias"]
        return tf.nn.sigmoid(logits)

    return model


ORIGINAL = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from musicnn import models
x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
is_training = tf.compat.v1.placeholder(tf.bool)
with tf.name_scope("model"):
    y = tf.nn.sigmoid(models.define_model(x, is_training, "MSD_musicnn", 50)[0])
sess = tf.compat.v1.Session()
tf.compat.v1.train.Saver().restore(sess, sys.argv[1])
batch = np.load(sys.argv[2])
out = np.concatenate([sess.run(y, {x: batch[i:i + 1], is_training: False})
                      for i in range(len(batch))])
np.save(sys.argv[3], out)
"""


def original_graph(batch: np.ndarray, tmp: Path) -> np.ndarray:
    """musicnn's own graph (tf.compat.v1.layers under tf-keras), in a child process."""
    np.save(tmp / "batch.npy", batch)
    subprocess.run([sys.executable, "-W", "ignore", "-c", ORIGINAL, checkpoint_prefix(),
                    str(tmp / "batch.npy"), str(tmp / "out.npy")], check=True)
    return np.load(tmp / "out.npy")


def librosa_log_mel(audio: np.ndarray, float16: bool) -> np.ndarray:
    """musicnn's extractor.batch_data front end; float16=True is its own cast."""
    import librosa
    mel = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512,
                                         n_mels=96).T
    if float16:
        mel = mel.astype(np.float16)
    with np.errstate(over="ignore"):  # float16: 10000 * mel overflows to inf above mel 6.55
        return np.log10(10000 * mel + 1).astype(np.float32)


def patches_of(spec: np.ndarray) -> np.ndarray:
    """Consecutive non-overlapping 187-frame patches, as musicnn tags a file."""
    n = (spec.shape[0] - PATCH) // PATCH + 1
    return np.stack([spec[i * PATCH:(i + 1) * PATCH] for i in range(n)])


def load_clips(folder: Path) -> list[tuple[str, np.ndarray]]:
    import librosa
    # By folder, then by name with numbers in order (Emotify: audio/<genre>/<n>.mp3).
    files = sorted(folder.rglob("*.mp3"), key=lambda p: (str(p.parent), p.stem.zfill(12)))
    return [(f"{p.parent.name}/{p.stem}", librosa.load(p, sr=16000)[0]) for p in files]


def run_tflite(model_bytes: bytes, batch: np.ndarray) -> np.ndarray:
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    res = []
    for patch in batch:
        interp.set_tensor(inp["index"], patch[None].astype(np.float32))
        interp.invoke()
        res.append(interp.get_tensor(out["index"])[0].copy())
    return np.array(res)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> dict[str, float]:
    """ref/got: per clip, (patches, 50) probabilities. Patch-level error, clip-level ranks."""
    err = np.concatenate([np.abs(r - g).ravel() for r, g in zip(ref, got, strict=True)])
    pooled = [(r.mean(0), g.mean(0)) for r, g in zip(ref, got, strict=True)]
    rho = [spearman(r, g) for r, g in pooled]
    top5 = [len(set(np.argsort(-r)[:5]) & set(np.argsort(-g)[:5])) / 5 for r, g in pooled]
    top1 = [float(np.argmax(r) == np.argmax(g)) for r, g in pooled]
    pooled_err = [np.abs(r - g).max() for r, g in pooled]
    return {"mean_abs_error": round(float(err.mean()), 5), "max_abs_error": round(float(err.max()), 4),
            "pooled_max_abs_error": round(float(np.max(pooled_err)), 4),
            "spearman_mean": round(float(np.mean(rho)), 4), "spearman_min": round(float(np.min(rho)), 4),
            "top5_agreement": round(float(np.mean(top5)), 4),
            "top1_agreement": round(float(np.mean(top1)), 4)}


def convert(model, kind: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf
    fn = model.get_concrete_function(tf.TensorSpec([1, PATCH, N_MELS], tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    if kind == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif kind == "int8-weights":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif kind == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([p[None].astype(np.float32)] for p in calibration)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Float input and output: the front end and the pooling stay in float; the model
        # quantises its own input with the scale calibrated here.
    return conv.convert()


def print_pins(files: list[Path], patches: int, tmp: Path) -> None:
    """Reference tags: librosa.load at 16 kHz, librosa's mel in float32, musicnn's own graph, on the
    patches frame_daemon.music.audio.tagger picks, averaged."""
    import librosa

    from frame_daemon.music.audio import tagger as rt
    labels = msd_labels()
    for path in files:
        # .npy: 16 kHz samples as frame-daemon decoded them (the test's own input); else a file.
        audio = np.load(path) if path.suffix == ".npy" else librosa.load(path, sr=16000)[0]
        spec = librosa_log_mel(audio, float16=False)
        batch = np.stack([spec[s:s + PATCH] for s in rt.patch_starts(spec.shape[0], patches)])
        probs = original_graph(batch, tmp).mean(axis=0)
        top = np.argsort(-probs)[:8]
        print(f"{path.name}: " + ", ".join(f'("{labels[i]}", {probs[i]:.3f})' for i in top))


def compact_json(value: object) -> str:
    """JSON indented by one, lists of plain numbers on one line: the layout of
    calibrate_music_mood.py, which writes the mood head into the same file."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s*(-?[0-9][-+0-9.eE]*(?:,\s*-?[0-9][-+0-9.eE]*)*)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, help="folder of music clips (mp3) to check and calibrate on")
    ap.add_argument("--pins", type=Path, nargs="+",
                    help="only print the tags musicnn's own front end and graph give these audio "
                         "files, or .npy arrays of 16 kHz samples (the expectations of "
                         "tests/test_music_tagger.py), then stop")
    ap.add_argument("--patches", type=int, default=5, help="patches per file for --pins")
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--choose", choices=("auto", "float32", "float16", "int8-weights", "int8"),
                    default="auto")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/convert-music-tagger"))
    args = ap.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    try:
        import librosa  # noqa: F401
        import musicnn  # noqa: F401
        import tensorflow as tf
    except ImportError as exc:
        sys.exit(f"convert_music_tagger: {exc.name} is missing; this script runs in its own venv "
                 "(see the top of scripts/convert_music_tagger.py for the three pip commands)")

    from frame_daemon.music.audio import tagger as rt

    if args.pins:
        print_pins(args.pins, args.patches, args.tmp)
        return
    if not args.clips:
        ap.error("--clips is required to convert")

    weights = read_weights(checkpoint_prefix())
    n_params = sum(int(v.size) for k, v in weights.items() if "moving" not in k)
    print(f"checkpoint: {len(weights)} tensors, {n_params} trained parameters")
    model = build_model(weights)

    if not args.clips.is_dir() or not any(args.clips.rglob("*.mp3")):
        sys.exit(f"convert_music_tagger: no .mp3 clips under {args.clips} (the Emotify development "
                 "clips, or any music, to check and calibrate on)")
    clips = load_clips(args.clips)
    print(f"clips: {len(clips)} from {args.clips}")

    # 3. front end: numpy (float32) against librosa as musicnn calls it.
    print("\nfront end, numpy vs librosa (5 clips, log-mel units; tags through the float graph):")
    front = {"clips": 5}
    d32, d16, t32, t16, inf16, bins, inf_patches, n_patches = [], [], [], [], 0, 0, 0, 0
    for name, audio in clips[::20][:5]:
        ours = rt.log_mel(audio)
        ref32, ref16 = librosa_log_mel(audio, False), librosa_log_mel(audio, True)
        inf16 += int(np.isinf(ref16).sum())
        bins += ref16.size
        p16 = patches_of(ref16)
        inf_patches += int(np.isinf(p16).any(axis=(1, 2)).sum())
        n_patches += len(p16)
        fin = np.isfinite(ref16)
        d32.append(np.abs(ours - ref32))
        d16.append(np.abs(ours - ref16)[fin])
        tag_ours = model(patches_of(ours)).numpy()
        tag32 = model(patches_of(ref32)).numpy()
        tag16 = model(patches_of(np.where(fin, ref16, ref32))).numpy()
        t32.append(np.abs(tag_ours - tag32).max())
        t16.append(np.abs(tag_ours - tag16).max())
        print(f"  {name:14s} log-mel max |d| vs librosa f32 {d32[-1].max():.2e} (mean "
              f"{d32[-1].mean():.1e}), vs musicnn f16 {d16[-1].max():.2e} (mean {d16[-1].mean():.1e}); "
              f"tags max |d| {t32[-1]:.1e} / {t16[-1]:.1e}")
    front |= {"log_mel_max_abs_diff_vs_librosa_float32": float(f"{max(d.max() for d in d32):.2e}"),
              "log_mel_mean_abs_diff_vs_librosa_float32": float(f"{np.mean([d.mean() for d in d32]):.2e}"),
              "log_mel_max_abs_diff_vs_musicnn_float16": float(f"{max(d.max() for d in d16):.2e}"),
              "log_mel_mean_abs_diff_vs_musicnn_float16": float(f"{np.mean([d.mean() for d in d16]):.2e}"),
              "tags_max_abs_diff_vs_librosa_float32": float(f"{max(t32):.2e}"),
              "tags_max_abs_diff_vs_musicnn_float16": float(f"{max(t16):.2e}"),
              "musicnn_float16_inf_bins": f"{inf16} of {bins} ({100 * inf16 / bins:.2f} %), "
                                          f"in {inf_patches} of {n_patches} patches"}
    print(f"  musicnn's float16 cast made {inf16} of {bins} log-mel bins inf "
          f"({100 * inf16 / bins:.2f} %; excluded above), in {inf_patches} of {n_patches} patches")

    half = len(clips) // 2
    # Calibrate on the first half of every genre, measure on the second (files sort by genre).
    # The first 12 of every 25 clips of a folder (Emotify: files 1-12 of each genre) calibrate.
    folder_of = [name.rpartition("/")[0] for name, _ in clips]
    rank = [folder_of[:i].count(f) for i, f in enumerate(folder_of)]
    size = {f: folder_of.count(f) for f in folder_of}
    calib_clips = [c for c, r, f in zip(clips, rank, folder_of, strict=True) if r < size[f] * 12 // 25]
    eval_clips = [c for c, r, f in zip(clips, rank, folder_of, strict=True) if r >= size[f] * 12 // 25]
    rng = np.random.default_rng(17)
    calib = np.concatenate([patches_of(rt.log_mel(a)) for _, a in calib_clips])
    calib = calib[rng.choice(len(calib), size=min(300, len(calib)), replace=False)]
    evals = [patches_of(rt.log_mel(a)) for _, a in eval_clips]
    print(f"\ncalibration: {len(calib)} patches of {len(calib_clips)} clips; "
          f"evaluation: {sum(len(e) for e in evals)} patches of {len(eval_clips)} clips ({half=})")

    t0 = time.perf_counter()
    ref = [model(e).numpy() for e in evals]
    print(f"float TF graph: {time.perf_counter() - t0:.1f} s")

    # 2. the rebuild against musicnn's own graph.
    sample = np.concatenate([e[:2] for e in evals[::4]])
    orig = original_graph(sample, args.tmp)
    rebuilt = model(sample).numpy()
    rebuild_diff = float(np.abs(orig - rebuilt).max())
    print(f"rebuilt graph vs musicnn's original graph: max |d| {rebuild_diff:.2e} over "
          f"{len(sample)} patches x 50 tags")
    # The rewritten front end (small arena) against musicnn's formulation, op for op, everywhere.
    plain = build_model(weights, plain=True)
    rewrite_diff = float(max(np.abs(plain(e).numpy() - r).max() for e, r in zip(evals, ref, strict=True)))
    print(f"rewritten front end vs the plain formulation: max |d| {rewrite_diff:.2e} over "
          f"{sum(len(e) for e in evals)} patches x 50 tags")

    results, blobs = {}, {}
    for kind in ("float32", "float16", "int8-weights", "int8"):
        blob = convert(model, kind, calib)
        got = [run_tflite(blob, e) for e in evals]
        results[kind] = {"bytes": len(blob), **agreement(ref, got)}
        blobs[kind] = blob
        print(f"  {kind:13s} {len(blob) / 1e6:5.2f} MB  {results[kind]}")

    # Full int8 where the tags survive it: top-5 mostly the same, ranks nearly so.
    ok = lambda r: r["top5_agreement"] >= 0.9 and r["spearman_mean"] >= 0.97  # noqa: E731
    chosen = args.choose if args.choose != "auto" else next(
        k for k in ("int8", "int8-weights", "float16") if ok(results[k]) or k == "float16")
    print(f"\nchosen: {chosen}")

    args.out.mkdir(parents=True, exist_ok=True)
    tflite_path = args.out / "music-tagger-msd.tflite"
    json_path = args.out / "music-tagger-msd.json"
    if tflite_path.exists():  # what this conversion replaces, on the same patches
        previous = agreement([run_tflite(tflite_path.read_bytes(), e) for e in evals],
                             [run_tflite(blobs[chosen], e) for e in evals])
        print(f"against the model it replaces ({tflite_path}): {previous}")
    # The mood head reading these tags is calibrate_music_mood.py's (--write), not this script's.
    kept = {k: v for k, v in json.loads(json_path.read_text()).items() if k == "mood_head"} \
        if json_path.exists() else {}
    tflite_path.write_bytes(blobs[chosen])
    meta = {
        "format": rt.METADATA_FORMAT,
        "file": tflite_path.name,
        "name": "musicnn MSD_musicnn (Million Song Dataset, 50 tags)",
        "origin": "musicnn 0.1.0 (PyPI wheel), musicnn/MSD_musicnn checkpoint; J. Pons and X. Serra, "
                  "'musicnn: pre-trained convolutional neural networks for music audio tagging', "
                  "ISMIR 2019 late-breaking demo; https://github.com/jordipons/musicnn",
        "licence": "ISC (LICENSE-musicnn.txt)",
        "converted_by": "scripts/convert_music_tagger.py (graph rebuilt from plain TF ops, "
                        f"TensorFlow {tf.__version__})",
        "trained_parameters": n_params,
        "input": {"shape": [1, PATCH, N_MELS], "dtype": "float32",
                  "meaning": "one 3 s patch of log-mel frames (time, mel band)"},
        "output": {"shape": [1, 50], "dtype": "float32", "meaning": "tag probabilities (sigmoid)"},
        "front_end": {"sample_rate": 16000, "n_fft": 512, "hop": 256, "window": "hann (periodic)",
                      "center": "zero padding of n_fft/2", "power": 2, "n_mels": 96, "fmin": 0,
                      "fmax": 8000, "mel_scale": "slaney (librosa htk=False)", "mel_norm": "slaney",
                      "log": "log10(10000 * mel + 1), in float32", "patch_frames": PATCH},
        "quantization": chosen,
        "tags": msd_labels(),
        "figures": {
            "rebuilt_vs_original_graph_max_abs_diff": float(f"{rebuild_diff:.2e}"),
            "rewritten_vs_plain_front_end_max_abs_diff": float(f"{rewrite_diff:.2e}"),
            "front_end": front,
            "calibration": f"{len(calib)} patches of {len(calib_clips)} Emotify dev clips "
                           "(files 1-12 of each genre)",
            "evaluation": f"{sum(len(e) for e in evals)} patches of {len(eval_clips)} Emotify dev "
                          "clips (files 13-25), against the float TF graph",
            "variants": results,
        },
    }
    json_path.write_text(compact_json(meta | kept) + "\n")
    print(f"wrote {tflite_path} ({len(blobs[chosen]) / 1e6:.2f} MB) and its JSON")


if __name__ == "__main__":
    main()
