"""A tiny TF training job whose input pipeline and step marking are chosen by flags.

tests/data/make_fixtures.py runs it under `ioprof trace` to record the analyzer fixtures; each
scenario's bottleneck is set by construction (what is heavy), which the tests check:
  --decode-cost N   JPEG size and resize work per element (decode-bound when large)
  --parallel        .map(num_parallel_calls=AUTOTUNE) instead of a sequential map
  --unfused         switch off map+batch fusion (BatchV2 over Map/ParallelMap)
  --sequential      switch off tf.data's automatic map parallelization (a truly serial Map)
  --files N         a list of N TFRecord files (FlatMap[i]::TFRecord); --gzip compresses them
  --model-cost N    matmul width of the model (compute-bound when large)
  --fit             Keras Model.fit instead of a custom loop
  --no-markers      a custom loop without Trace(step_num=) (no step markers)
  --wrap-fetch      a custom loop whose Trace(step_num=) also holds the batch fetch
  --py-decode       decode in Python (tf.py_function), invisible to TF's op table
"""
import argparse
import os
import tempfile

import numpy as np
import tensorflow as tf

ap = argparse.ArgumentParser()
ap.add_argument("--decode-cost", type=int, default=32)
ap.add_argument("--parallel", action="store_true")
ap.add_argument("--unfused", action="store_true")
ap.add_argument("--sequential", action="store_true")  # also stop tf.data parallelizing the map
ap.add_argument("--files", type=int, default=2)
ap.add_argument("--gzip", action="store_true")
ap.add_argument("--record-kb", type=int, default=0)
ap.add_argument("--model-cost", type=int, default=16)
ap.add_argument("--fit", action="store_true")
ap.add_argument("--no-markers", action="store_true")
ap.add_argument("--wrap-fetch", action="store_true")  # the step marker also holds next(it)
ap.add_argument("--py-decode", action="store_true")  # decode in Python via tf.py_function
ap.add_argument("--steps", type=int, default=60)
args = ap.parse_args()

workdir = tempfile.mkdtemp(prefix="ioprof_fixture_")
side = args.decode_cost
image = tf.io.encode_jpeg(tf.cast(np.random.default_rng(0).integers(0, 255, (side, side, 3)),
                                  tf.uint8)).numpy()
pad = os.urandom(args.record_kb * 1024)
compression = "GZIP" if args.gzip else ""
files = []
for i in range(args.files):
    path = os.path.join(workdir, f"part-{i}.tfrecord")
    with tf.io.TFRecordWriter(path, options=compression) as writer:
        for j in range(64):
            example = tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                "pad": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pad])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[j % 2])),
            }))
            writer.write(example.SerializeToString())
    files.append(path)

SPEC = {"image": tf.io.FixedLenFeature([], tf.string),
        "pad": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64)}


def decode(record):  # the map function: parse, decode, resize
    ex = tf.io.parse_single_example(record, SPEC)
    img = tf.image.decode_jpeg(ex["image"], channels=3)
    img = tf.image.resize(img, (side // 2, side // 2))
    return tf.reshape(tf.reduce_mean(img, axis=-1), (-1,))[:16], ex["label"]


def py_decode(record):  # Python preprocessing: a checksum loop over the record's bytes
    data = record.numpy()
    acc = 0
    for b in data[: side * 64]:
        acc = (acc * 31 + b) % 1000003
    return np.full((16,), acc % 255, np.float32), np.int64(acc % 2)


def decode_in_python(record):
    x, y = tf.py_function(py_decode, [record], [tf.float32, tf.int64])
    return tf.reshape(x, (16,)), tf.reshape(y, ())


ds = tf.data.TFRecordDataset(files, compression_type=compression)
ds = ds.repeat()
fn = decode_in_python if args.py_decode else decode
ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE if args.parallel else None)
ds = ds.batch(8)
ds = ds.prefetch(2)
if args.unfused or args.sequential:
    options = tf.data.Options()
    options.experimental_optimization.map_and_batch_fusion = not args.unfused
    options.experimental_optimization.map_parallelization = not args.sequential
    ds = ds.with_options(options)

width = args.model_cost
w1 = tf.Variable(tf.random.normal((16, width)))
w2 = tf.Variable(tf.random.normal((width, width)))
w3 = tf.Variable(tf.random.normal((width, 1)))

if args.fit:
    import keras

    model = keras.Sequential([keras.layers.Input((16,)), keras.layers.Dense(width),
                              keras.layers.Dense(width), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
else:
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            h = tf.matmul(tf.matmul(x, w1), w2)
            for _ in range(4):
                h = tf.tanh(tf.matmul(h, w2))
            loss = tf.reduce_mean((tf.matmul(h, w3) - tf.cast(y[:, None], tf.float32)) ** 2)
        grads = tape.gradient(loss, [w1, w2, w3])
        for v, g in zip([w1, w2, w3], grads, strict=False):
            v.assign_sub(1e-6 * g)
        return loss

    if args.wrap_fetch:
        it = iter(ds)
        for step in range(args.steps):
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                x, y = next(it)
                train_step(x, y)
    for step, (x, y) in enumerate(ds):
        if step >= args.steps or args.wrap_fetch:
            break
        if args.no_markers:
            train_step(x, y)
        else:
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                train_step(x, y)
print("pipeline_job done")
