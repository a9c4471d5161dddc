#!/usr/bin/env python3
"""Do the other taggers in musicnn's wheel lift the music valence head? Measured by nested CV.

The shipped head reads the 50 tags of musicnn's MSD_musicnn. The same PyPI wheel (`musicnn` 0.1.0,
ISC licence) holds three more checkpoints on the same 16 kHz, 96-mel, 3 s log-mel patches:
MTT_musicnn (the same network trained on MagnaTagATune: 50 tags such as soft, quiet, loud, weird,
classical, ambient), and the VGG-like MSD_vgg and MTT_vgg (5 convolutions of 128 filters). This
script tags the 100 Emotify development excerpts with each of them, on the patches the analysis
reads (3 per excerpt, the project's own decoder and log-mel), and judges heads that use their
tags, nested, on the outer folds of scripts/explore_music_heads.py (whose machinery it imports).

`--extract` (a TensorFlow venv; conversion-time tools only) rebuilds MTT_musicnn with
convert_music_tagger.py's graph (the same variable names and sizes as MSD_musicnn) and the VGGs
from plain TF ops, checks each rebuild against musicnn's own graph (tf.compat.v1.layers under
tf-keras, in a child process) on real patches, prints a few clips' top tags, times a patch in
each graph, and caches the features, the shipped model's MSD tags and the new taggers' tags per
patch. `--cache` judges the forms (numpy only).

Forms, declared before any figure was seen (tag logits are those of the mean probability over
the 3 patches, as the shipped head reads them; the new logits join as more tag inputs, at the
tags' group weight):

- B:  audio-3's form (explore_music_heads.py's B): features + the MSD_musicnn logits, ridge +
      kernel, its 252 strengths chosen inside each outer training set (the baseline);
- E9: audio-4's shipped form (B weighted by reliability, averaged over its grid), for reference;
- M1: B + the 50 MTT_musicnn logits;
- M2: B with the MTT_musicnn logits in place of MSD_musicnn's;
- M3: M1 averaged over its whole strength grid (E5's way: nothing chosen);
- M4: E9 + the MTT_musicnn logits (paired against E9 as well);
- V1: B + the 50 MSD_vgg logits; V2: B + the 50 MTT_vgg logits.

Valence and arousal for every form (E9 and M4 weigh arousal by valence's reliability). The rule,
set beforehand: a form counts as a gain only if its nested valence mean reaches 0.50 and it beats
B on at least 6 of the 10 outer seeds (M4: and beats E9 on at least 6).

Declared after those figures were seen (M2 alone passed the rule), so they carry that selection:
every form is also paired against E9 (what ships); M5 = M2 in E9's form (MTT_musicnn logits in
place of MSD's, weighted by reliability, averaged over the grid: what a new head would ship as);
leave-one-genre-out figures of the averaged forms (E9, M3, M4, M5); M2f and M5f: M2 and M5 on the
MTT tags of the float16 .tflite below (as the analysis would read them); and `--blocks` redoes all
on album-proxy outer folds (5 consecutive files of a genre together).

Figures (2026-12-06; nested valence / arousal r, mean ± sd over 10 seeds; stratified folds):
B 0.429 ± 0.063 / 0.690; E9 0.468 ± 0.048 / 0.700; M1 0.444 / 0.731; M2 0.503 ± 0.070 / 0.757
(valence better than B with 8 of 10 seeds, than E9 with 6); M3 0.472 / 0.745; M4 0.481 / 0.747;
V1 0.362 / 0.705; V2 0.359 / 0.708; M5 0.489 ± 0.054 / 0.752 (than E9: +0.021, 7 of 10). Album-proxy
folds: M2 0.498 ± 0.033, M5 0.486 ± 0.025, E9 0.446 ± 0.018. Leave-one-genre-out valence: E9 0.125,
M5 0.355. The MTT tags replace the MSD tags well; added beside them (M1, M3, M4) they gain little.

Cost: `--extract` also converts MTT_musicnn to a float16 .tflite the way convert_music_tagger.py
converts MSD_musicnn (same graph, same sizes; written beside the cache, never into models/), and
`--cost` loads it beside the shipped model in LiteRT, as the analysis worker would: ms per patch
of each, and the memory (PSS) the second interpreter adds.

    unzip musicnn-0.1.0-py3-none-any.whl -d MUSICNN_DIR   # the checkpoints: MUSICNN_DIR/musicnn/
    TF_PYTHON scripts/explore_music_taggers.py --data EMOTIFY_DIR --musicnn MUSICNN_DIR \\
        --extract /tmp/emotify-taggers.npz
    .venv/bin/python scripts/explore_music_taggers.py --data EMOTIFY_DIR --cache /tmp/emotify-taggers.npz \\
        --lexicon NRC-VAD-Lexicon-v1.txt [--blocks]
    .venv/bin/python scripts/explore_music_taggers.py --data EMOTIFY_DIR \\
        --cost /tmp/emotify-taggers-MTT_musicnn.tflite

TF_PYTHON: a venv with tensorflow-cpu 2.21, tf-keras 2.21, ai-edge-litert, soundfile and mutagen
(the analysis' decoder), as convert_music_tagger.py's. The cache also serves explore_music_heads.py
(`names`, `features`, `probs`: the shipped MSD tags).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import calibrate_music_mood as cal  # noqa: E402
import explore_music_heads as heads  # noqa: E402

PATCHES = 3  # as the analysis reads a track
TAGGERS = ("MTT_musicnn", "MSD_vgg", "MTT_vgg")
VGG_POOLS = ((4, 1), (2, 2), (2, 2), (2, 2), (4, 4))  # musicnn's vgg(): pool sizes; strides 2 (last 4)


# --- extraction (TensorFlow venv) ---------------------------------------------------------------

def build_vgg(w: dict[str, np.ndarray]):
    """musicnn's vgg() in plain TF ops, inference mode: (N, 187, 96) log-mel -> (N, 50) probabilities."""
    import tensorflow as tf
    from convert_music_tagger import bn_affine

    def bn(x, i):
        scale, shift = bn_affine(w, i)
        return x * scale + shift

    @tf.function(input_signature=[tf.TensorSpec([None, 187, 96], tf.float32)])
    def model(x):
        h = bn(x[..., None], 0)
        for i, pool in enumerate(VGG_POOLS, 1):
            h = tf.nn.relu(tf.nn.conv2d(h, w[f"{i}CNN/kernel"], 1, "SAME") + w[f"{i}CNN/bias"])
            h = tf.nn.max_pool2d(bn(h, i), pool, 4 if i == len(VGG_POOLS) else 2, "VALID")
        flat = tf.reshape(h, [-1, w["dense/kernel"].shape[0]])  # NHWC flattened, as layers.flatten
        return tf.nn.sigmoid(tf.matmul(flat, w["dense/kernel"]) + w["dense/bias"])
    return model


def labels_of(musicnn_dir: Path, tagger: str) -> list[str]:
    sys.path.insert(0, str(musicnn_dir))
    from musicnn import configuration
    return list(configuration.MTT_LABELS if tagger.startswith("MTT") else configuration.MSD_LABELS)


def reference(musicnn_dir: Path, tagger: str, batch: np.ndarray, tmp: Path) -> np.ndarray:
    """musicnn's own graph for `tagger` (convert_music_tagger.py's child process, another model)."""
    from convert_music_tagger import ORIGINAL
    np.save(tmp / "batch.npy", batch)
    code = ORIGINAL.replace('"MSD_musicnn"', repr(tagger))
    env = dict(os.environ, PYTHONPATH=str(musicnn_dir))
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, f"{musicnn_dir}/musicnn/{tagger}/",
                    str(tmp / "batch.npy"), str(tmp / "out.npy")], check=True, env=env)
    return np.load(tmp / "out.npy")


def ms_per_patch(run, patch: np.ndarray, repeats: int = 20) -> float:
    run(patch)
    t = time.perf_counter()
    for _ in range(repeats):
        run(patch)
    return 1000 * (time.perf_counter() - t) / repeats


def extract(data: Path, names: list[str], musicnn_dir: Path, out: Path) -> None:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ai_edge_litert.interpreter import Interpreter
    from convert_music_tagger import build_model, read_weights

    from frame_daemon.music.audio import tagger as rt
    from frame_daemon.music.audio.decode import ANALYSIS_RATE, decode_excerpt_at
    from frame_daemon.music.audio.features import analyse_samples

    it = Interpreter(str(ROOT / "models/music-tagger-msd.tflite"), num_threads=1)
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def shipped(patch: np.ndarray) -> np.ndarray:
        it.set_tensor(inp, patch[None])
        it.invoke()
        return it.get_tensor(outp)[0].copy()

    models = {}
    for tagger in TAGGERS:
        w = read_weights(f"{musicnn_dir}/musicnn/{tagger}/")
        models[tagger] = build_model(w) if "musicnn" in tagger else build_vgg(w)
    feats, mels = [], []
    for i, name in enumerate(names, 1):
        s11, s16 = decode_excerpt_at(data / name, (ANALYSIS_RATE, rt.SAMPLE_RATE))
        feats.append(json.dumps(analyse_samples(s11, ANALYSIS_RATE).as_dict()))
        mels.append([rt.log_mel(s16, s, rt.PATCH_FRAMES)
                     for s in rt.patch_starts(1 + len(s16) // rt.HOP, PATCHES)])
        print(f"{i}/{len(names)} {name}", file=sys.stderr, flush=True)
    mels = np.array(mels, dtype=np.float32)  # (n, 3, 187, 96)
    probs = {"probs": np.array([[shipped(p) for p in m] for m in mels])}
    for tagger, model in models.items():
        probs[f"probs_{tagger}"] = np.array([model(m).numpy() for m in mels])

    # Each rebuild against musicnn's own graph: the first patch of every 10th excerpt.
    tmp = out.parent / (out.stem + "-ref")
    tmp.mkdir(parents=True, exist_ok=True)
    sample = mels[::10, 0]
    print(f"\nrebuilt graph vs musicnn's own graph, {len(sample)} patches x 50 tags; ms per patch "
          "(TF, 1 thread, this machine)")
    print(f"  MSD_musicnn, shipped .tflite (LiteRT): {ms_per_patch(shipped, sample[0]):.1f} ms per patch")
    for tagger, model in models.items():
        d = np.abs(reference(musicnn_dir, tagger, sample, tmp) - model(sample).numpy()).max()
        ms = ms_per_patch(lambda p, m=model: m(p[None]).numpy(), sample[0])
        print(f"  {tagger:12s} max |d| {d:.2e}; {ms:.1f} ms per patch")
    # MTT_musicnn as the analysis would run it: float16 weights, in LiteRT.
    from convert_music_tagger import convert
    lite_path = out.with_name(f"{out.stem}-MTT_musicnn.tflite")
    lite_path.write_bytes(convert(models["MTT_musicnn"], "float16", sample))
    lite = Interpreter(str(lite_path), num_threads=1)
    lite.allocate_tensors()
    lin, lout = lite.get_input_details()[0]["index"], lite.get_output_details()[0]["index"]

    def lite_tags(patch: np.ndarray) -> np.ndarray:
        lite.set_tensor(lin, patch[None])
        lite.invoke()
        return lite.get_tensor(lout)[0].copy()
    probs["probs_MTT_musicnn_f16"] = np.array([[lite_tags(p) for p in m] for m in mels])
    d = np.abs(probs["probs_MTT_musicnn_f16"] - probs["probs_MTT_musicnn"]).max()
    print(f"  MTT_musicnn as float16 .tflite ({lite_path.stat().st_size / 1e6:.2f} MB, {lite_path}): "
          f"max |d| against the TF graph {d:.2e} over every patch")
    labels = {t: labels_of(musicnn_dir, t) for t in TAGGERS}
    for j in (0, 1, 25, 26, 50, 51, 75, 76):  # two excerpts of each genre
        line = [names[j]]
        for tagger in TAGGERS:
            p = probs[f"probs_{tagger}"][j].mean(0)
            line.append(f"{tagger}: " + ", ".join(f"{labels[tagger][k]} {p[k]:.2f}"
                                                  for k in np.argsort(-p)[:4]))
        print("  " + "\n      ".join(line))
    np.savez(out, names=np.array(names), features=np.array(feats), **probs,
             **{f"labels_{t}": np.array(v) for t, v in labels.items()})
    print(f"wrote {out}")


def pss_mb() -> float:
    with open("/proc/self/smaps_rollup", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024


def cost(second: Path) -> int:
    """The shipped tagger and a second one loaded in one process, in the daemon's runtime: ms per
    patch of each (1 thread, this machine) and the PSS each interpreter adds once it has run."""
    from frame_daemon.vision.runtime import make_interpreter
    patch = np.random.default_rng(0).normal(2.0, 1.0, (1, 187, 96)).astype(np.float32)
    base = pss_mb()
    for path in (ROOT / "models/music-tagger-msd.tflite", second):
        it, runtime = make_interpreter(path, threads=1)
        inp = it.get_input_details()[0]["index"]

        def run(p, it=it, inp=inp):
            it.set_tensor(inp, p)
            it.invoke()
        ms = ms_per_patch(run, patch, repeats=50)
        now = pss_mb()
        print(f"{path.name}: {ms:.1f} ms per patch ({runtime}, 1 thread); {path.stat().st_size / 1e6:.2f} MB "
              f"file; PSS +{now - base:.1f} MB once loaded and run")
        base = now
    return 0


# --- the forms, judged nested -------------------------------------------------------------------

def judge(args: argparse.Namespace) -> int:
    from calibrate_audio_model import read_targets
    targets = read_targets(args.data)
    c = np.load(args.cache)
    names = [str(n) for n in c["names"]]
    labels = json.loads(cal.TAGGER_JSON.read_text())["tags"]
    points = cal.tag_points(labels, args.lexicon)
    features = [json.loads(str(f)) for f in c["features"]]
    table = cal.input_table(features, c["probs"].mean(1), labels, points)
    genre = np.array([n.split("/")[1] for n in names])
    # The outer folds of explore_music_heads.py: groups from the shipped inputs only.
    groups = cal.twin_groups(np.column_stack([table[k] for k in sorted(table)]), cal.TWIN_R)
    if args.blocks:  # runs of 5 consecutive files of a genre kept in one fold (album proxy)
        groups = cal.block_groups(names)
    outer = [cal.grouped_folds(groups, genre, cal.FOLDS, s) for s in cal.SEEDS]
    n_listeners = cal.listeners(args.data, names)
    wt = n_listeners / (n_listeners + cal.RELIABILITY_N0)
    cols = {"MSD_musicnn": [f"logit:{t}" for t in labels]}
    for tagger in (*TAGGERS, "MTT_musicnn_f16"):
        lg = heads.logit(c[f"probs_{tagger}"].mean(1))
        cols[tagger] = [f"{tagger}:{t}" for t in c[f"labels_{tagger.removesuffix('_f16')}"]]
        table.update({k: lg[:, j] for j, k in enumerate(cols[tagger])})
    print(f"{len(names)} excerpts, {c['probs'].shape[1]} patches each; outer folds: repeated "
          f"{'album-proxy (5 consecutive files) ' if args.blocks else ''}grouped "
          f"{cal.FOLDS}-fold CV, seeds {cal.SEEDS.start}-{cal.SEEDS.stop - 1}; inner seeds "
          f"{cal.INNER_SEEDS}; r mean ± sd over the outer seeds")
    for axis in ("valence", "arousal"):
        y = np.array([targets[n][0 if axis == "valence" else 1] for n in names])
        feats = list(cal.FEATURE_INPUTS[axis])
        nf = len(feats)

        def form(*taggers: str, y=y, feats=feats, nf=nf):
            return heads.table_form(table, feats + [k for t in taggers for k in cols[t]], nf, y)

        def averaged(*taggers: str, y=y, feats=feats, nf=nf):
            x = np.column_stack([table[k] for k in feats + [k for t in taggers for k in cols[t]]])
            return heads.bagged(*heads.weighted_form(x, nf, y, wt))
        forms = {
            "B": ("audio-3's form: features + MSD_musicnn logits, ridge + kernel", form("MSD_musicnn")),
            "E9": ("audio-4's (shipped): B weighted by reliability, averaged", averaged("MSD_musicnn")),
            "M1": ("B + MTT_musicnn logits", form("MSD_musicnn", "MTT_musicnn")),
            "M2": ("B with MTT_musicnn logits in place of MSD's", form("MTT_musicnn")),
            "M3": ("M1 averaged over its whole strength grid", heads.bagged(*form("MSD_musicnn",
                                                                                 "MTT_musicnn"))),
            "M4": ("E9 + MTT_musicnn logits", averaged("MSD_musicnn", "MTT_musicnn")),
            "V1": ("B + MSD_vgg logits", form("MSD_musicnn", "MSD_vgg")),
            "V2": ("B + MTT_vgg logits", form("MSD_musicnn", "MTT_vgg")),
            "M5": ("M2 in E9's form (weighted, averaged)", averaged("MTT_musicnn")),
            "M2f": ("M2 on the float16 .tflite's MTT tags", form("MTT_musicnn_f16")),
            "M5f": ("M5 on the float16 .tflite's MTT tags", averaged("MTT_musicnn_f16")),
        }
        keys = args.forms.split(",")
        print(f"\n{axis}")
        ref: dict[str, list[float]] = {}
        for key in keys:
            what, (predict, grid) = forms[key]
            pick, scores = heads.choose(predict, grid, y, outer)
            rs = heads.nested(predict, grid, y, outer, genre)
            ref[key] = rs
            line = (f"  {key:3s} {what:62s} best of {len(grid):3d}: {cal.mean_sd(scores[pick])}; "
                    f"nested {cal.mean_sd(rs)}")
            for base in ("B", "E9"):
                if base in ref and key != base:
                    d = np.subtract(rs, ref[base])
                    line += (f"; - {base} {d.mean():+.3f} ± {d.std():.3f}, better in "
                             f"{int((d > 0).sum())}/{len(d)}")
            print(line, flush=True)
        # An unseen genre (4 folds): the averaged forms only, which choose nothing.
        logo = [np.nonzero(genre == g)[0] for g in np.unique(genre)]
        print("  leave-one-genre-out, pooled r: " + ", ".join(
            f"{k} {cal.r_of(heads.pooled(*forms[k][1], len(y), logo)[('bag',)], y):.3f}"
            for k in keys if forms[k][1][1] == [("bag",)]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the Emotify development split")
    ap.add_argument("--extract", type=Path, help="write the tags of every excerpt to this .npz")
    ap.add_argument("--musicnn", type=Path, help="folder the musicnn wheel is unzipped in (--extract)")
    ap.add_argument("--cache", type=Path, help="--extract's .npz, to judge the forms")
    ap.add_argument("--lexicon", type=Path, default=None)
    ap.add_argument("--forms", default="B,E9,M1,M2,M3,M4,V1,V2,M5,M2f,M5f", help="forms to judge")
    ap.add_argument("--blocks", action="store_true",
                    help="outer folds keep runs of 5 consecutive files together (album proxy)")
    ap.add_argument("--cost", type=Path,
                    help="a second tagger .tflite: its time and memory beside the shipped one")
    args = ap.parse_args()
    from calibrate_audio_model import read_targets
    if args.cost:
        return cost(args.cost)
    if args.extract:
        if not args.musicnn:
            ap.error("--extract needs --musicnn")
        extract(args.data, sorted(read_targets(args.data)), args.musicnn, args.extract)
        return 0
    if not args.cache:
        ap.error("give --extract or --cache")
    return judge(args)


if __name__ == "__main__":
    sys.exit(main())
