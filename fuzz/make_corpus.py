#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: fuzz/corpus/<reader>/, valid files only.

Each seed is small (a few KB at most) and exercises one feature of its format, so that the
fuzzer starts from every branch a real file takes and mutates outward from there. The output is
deterministic (gzip without a timestamp), so rerunning this script changes nothing unless the
script changed. The replay (ctest -L fuzz) checks that every seed is accepted.

    python3 fuzz/make_corpus.py            # rewrites fuzz/corpus/
"""

import gzip
import json
import math
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
FIXTURES = ROOT.parent / "tests" / "fixtures"


def write(reader, name, data):
    path = CORPUS / reader / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


# ---- safetensors ------------------------------------------------------------------------

ST_FORMATS = {"F32": "<f", "F64": "<d", "I32": "<i", "I64": "<q", "U8": "<B"}


def safetensors(tensors, metadata=None, order=None, pad=True, indent=None):
    """A file per the spec. `tensors`: (name, dtype, shape, values) in buffer order; `order`:
    the names in header order (default: buffer order)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    entries, buffer = {}, b""
    for name, dtype, shape, values in tensors:
        data = b"".join(struct.pack(ST_FORMATS[dtype], v) for v in values)
        assert len(values) == math.prod(shape), name
        entries[name] = {"dtype": dtype, "shape": list(shape),
                         "data_offsets": [len(buffer), len(buffer) + len(data)]}
        buffer += data
    for name in order or [t[0] for t in tensors]:
        header[name] = entries[name]
    text = json.dumps(header, indent=indent, ensure_ascii=False,
                      separators=None if indent else (",", ":")).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + buffer


def safetensors_seeds():
    r = "safetensors"
    write(r, "f32_matrix.safetensors",
          safetensors([("w", "F32", (2, 3), [1.0, -2.5, 0.0, 3.25, -0.0, 1e-3])]))
    write(r, "f64_vector.safetensors",
          safetensors([("x", "F64", (4,), [1.0, -1e300, 5e-324, float("inf")])]))
    write(r, "i32_scalar.safetensors", safetensors([("step", "I32", (), [-7])]))
    write(r, "i64_labels.safetensors",
          safetensors([("labels", "I64", (5,), [0, 9, 2**62, -2**63, 3])]))
    write(r, "u8_images.safetensors",
          safetensors([("pixels", "U8", (2, 2, 2), [0, 1, 127, 128, 200, 254, 255, 3])]))
    write(r, "zero_size_tensor.safetensors",
          safetensors([("empty", "U8", (0, 3), []), ("one", "F32", (1,), [1.0])]))
    write(r, "no_tensors.safetensors", safetensors([]))
    write(r, "metadata_only.safetensors", safetensors([], metadata={"format": "pt"}))
    write(r, "every_dtype_with_metadata.safetensors",
          safetensors([("dense/kernel", "F32", (2, 2), [0.5, -0.5, 0.25, 2.0]),
                       ("dense/bias", "F64", (2,), [0.0, 1.0]),
                       ("counts", "I32", (3,), [1, -2, 2**31 - 1]),
                       ("ids", "I64", (2,), [-1, 2**40]),
                       ("mask", "U8", (4,), [0, 1, 1, 0])],
                      metadata={"tabula": "0.1.0", "model": "sequential", "note": "\u00e9\u4e2d"}))
    # The header lists tensors in another order than their offsets: the reader sorts them.
    write(r, "header_order_differs.safetensors",
          safetensors([("a", "F32", (2,), [1.0, 2.0]), ("b", "I64", (1,), [3]),
                       ("c", "U8", (3,), [4, 5, 6])], order=["c", "a", "b"]))
    write(r, "unpadded_header.safetensors",
          safetensors([("t", "I32", (3,), [1, 2, 3])], pad=False))
    write(r, "pretty_printed_header.safetensors",
          safetensors([("t", "F32", (1, 2), [1.5, -1.5])], metadata={"k": "v"}, indent=2))
    write(r, "unicode_names.safetensors",
          safetensors([("caf\u00e9", "F32", (1,), [1.0]), ("\u4e2d\u6587", "U8", (1,), [7]),
                       ("layer.0/kernel:0", "I32", (1,), [9])]))
    write(r, "rank5_tensor.safetensors",
          safetensors([("t", "F32", (1, 1, 2, 1, 2), [1.0, 2.0, 3.0, 4.0])]))
    # Files written by PyTorch's safetensors (the known-answer fixtures of tests/nn).
    for fixture in ("batch_norm.safetensors", "optimizers.safetensors"):
        shutil.copyfile(FIXTURES / fixture, CORPUS / r / ("torch_" + fixture))


# ---- IDX --------------------------------------------------------------------------------

IDX_TYPES = {"ubyte": (0x08, ">B"), "sbyte": (0x09, ">b"), "short": (0x0B, ">h"),
             "int": (0x0C, ">i"), "float": (0x0D, ">f"), "double": (0x0E, ">d")}


def idx(kind, shape, values):
    code, fmt = IDX_TYPES[kind]
    assert len(values) == math.prod(shape)
    head = bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)
    return head + b"".join(struct.pack(fmt, v) for v in values)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx_seeds():
    r = "idx"
    labels = idx("ubyte", (10,), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    images = idx("ubyte", (2, 3, 3), [0, 255, 128, 1, 2, 3, 4, 5, 6] * 2)
    floats = idx("float", (2, 3),
                 [0.0, -0.0, 1.5, float("inf"), float("nan"), 1e-45])
    write(r, "ubyte_labels.idx1", labels)
    write(r, "ubyte_images.idx3", images)
    write(r, "sbyte_matrix.idx2", idx("sbyte", (2, 4), [-128, -1, 0, 1, 127, 5, -5, 64]))
    write(r, "short_vector.idx1", idx("short", (5,), [-32768, -1, 0, 1, 32767]))
    write(r, "int_matrix.idx2", idx("int", (2, 2), [-2**31, -1, 0, 2**31 - 1]))
    write(r, "float_matrix.idx2", floats)
    write(r, "double_vector.idx1", idx("double", (4,), [1.0, -1e300, 5e-324, float("-inf")]))
    write(r, "zero_extent.idx2", idx("ubyte", (0, 5), []))
    write(r, "rank4_ubyte.idx4", idx("ubyte", (1, 2, 1, 3), [9, 8, 7, 6, 5, 4]))
    write(r, "ubyte_labels.idx1.gz", gz(labels))
    write(r, "ubyte_images.idx3.gz", gz(images))
    write(r, "float_matrix.idx2.gz", gz(floats))
    write(r, "int_matrix.idx2.gz", gz(idx("int", (3,), [7, -7, 70000])))
    # gzip(1) appends a member per input file (cat a.gz b.gz): the reader reads them as one.
    write(r, "two_gzip_members.idx3.gz", gz(images[:7]) + gz(images[7:]))
    # Long runs compress ~1000:1, the ratio the reader's size check allows for.
    write(r, "zeros_compressed.idx2.gz", gz(idx("ubyte", (64, 64), [0] * 4096)))


# ---- CSV --------------------------------------------------------------------------------

def csv_seeds():
    r = "csv"
    write(r, "header.csv", "x,y,label\n0.5,1.5,0\n-2,3e-3,1\n4,5,2\n")
    write(r, "no_header.csv", "1,2,3\n4,5,6\n")
    write(r, "quoted_header.csv", '"sepal, length","say ""hi""",plain\n1,2,3\n"4","5",6\n')
    write(r, "multiline_quoted_header.csv", '"first\nline",b\n1,2\n')
    write(r, "crlf.csv", "a,b\r\n1,2\r\n3,4\r\n")
    write(r, "byte_order_mark.csv", "\ufeffa,b\n1,2\n")
    write(r, "blank_lines.csv", "\n\na,b\n\n1,2\n   \n3,4\n\n")
    write(r, "spaces_and_signs.csv", "a , b\n +1 , -2 \n\t3\t,\t+4.5e+2\n")
    write(r, "special_values.csv", "a,b,c\nnan,inf,-inf\n1e38,-1e-38,0\n")
    write(r, "semicolons.csv", "a;b;c\n1;2;3\n4;5;6\n")
    write(r, "tabs_no_header.tsv", "1\t2\n3\t4\n")
    write(r, "spaces_delimited.txt", "a b\n1 2\n")
    write(r, "single_column.csv", "value\n1\n2\n3\n")
    write(r, "header_only.csv", "a,b,c\n")
    write(r, "no_final_newline.csv", "a,b\n1,2")
    write(r, "empty_header_field.csv", "a,,c\n1,2,3\n")


# ---- sweep and model YAML ---------------------------------------------------------------

TAIL = """model:
  layers:
    - Flatten
    - {type: Dense, units: $hidden, activation: relu}
    - {type: Dense, units: 10, activation: softmax}
  optimizer: {type: adam, learning_rate: 0.003}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data: {train_samples: 512, test_samples: 128}
fit: {epochs: 1, batch_size: 64}
"""


def sweep(head, tail=TAIL):
    return head + tail


def sweep_yaml_seeds():
    r = "sweep_yaml"
    demo = (ROOT.parent / "tools" / "demo_sweep.hpp").read_text()
    write(r, "demo_grid.yaml", demo.split('R"yaml(')[1].split(')yaml"')[0])
    readme = (ROOT.parent / "README.md").read_text()
    example = readme.split("```yaml\n")[1].split("```")[0]
    # The README's example is a grid with a distribution (marked "random only"): as written
    # it is refused, so the seed is its random form.
    lines = ["method: random" if line.startswith("method:") else line
             for line in example.splitlines()]
    write(r, "readme_random.yaml", "\n".join(lines) + "\nrun_cap: 4\n")
    write(r, "grid_two_parameters.yaml", sweep(
        "method: grid\nmetric: {name: test_accuracy, goal: maximize}\nparameters:\n"
        "  hidden: {values: [16, 32, 64]}\n  lr: {values: [0.1, 0.01]}\n"))
    write(r, "grid_memory_limit_parameter.yaml", sweep(
        "name: small\nmethod: grid\nmetric: {name: test_accuracy, goal: maximize}\n"
        "parameters:\n  hidden: {values: [8, 16]}\n  limit: {values: [0, 64KiB, 1.5 MiB]}\n"
        "memory_limit: ${limit}\nmemory_tolerance: 4MiB\nrun_cap: 3\n"))
    write(r, "random_bounds.yaml", sweep(
        "method: random\nmetric: {name: loss}\nrun_cap: 6\nseed: 11\nparameters:\n"
        "  hidden: {min: 8, max: 24}\n"
        "  lr: {min: 0.0001, max: 0.1, distribution: log_uniform_values}\n"
        "  act: {values: [relu, tanh]}\n  rate: {min: 0.0, max: 0.5}\n",
        TAIL.replace("activation: relu}", "activation: $act}\n    - {type: Dropout, rate: $rate}")
            .replace("learning_rate: 0.003", "learning_rate: $lr")))
    write(r, "random_every_distribution.yaml", sweep(
        "method: random\nmetric: {name: test_loss, goal: minimize}\nrun_cap: 8\nseed: 3\n"
        "parameters:\n"
        "  hidden: {distribution: int_uniform, min: 4, max: 12}\n"
        "  c: {distribution: constant, value: 1}\n"
        "  cat: {distribution: categorical, values: [a, b, c], probabilities: [0.5, 0.25, 0.25]}\n"
        "  u: {distribution: uniform, min: -1, max: 1}\n"
        "  qu: {distribution: q_uniform, min: 0, max: 100, q: 5}\n"
        "  lu: {distribution: log_uniform, min: -5, max: 0}\n"
        "  luv: {distribution: log_uniform_values, min: 0.001, max: 1}\n"
        "  qluv: {distribution: q_log_uniform_values, min: 1, max: 1024, q: 1}\n"
        "  n: {distribution: normal, mu: 0, sigma: 2}\n"
        "  qn: {distribution: q_normal, mu: 10, sigma: 3, q: 0.5}\n"
        "  ln: {distribution: log_normal, mu: -3, sigma: 0.5}\n"
        "  g: {mu: 1, sigma: 0.1}\n"))
    write(r, "every_layer.yaml", sweep(
        "method: grid\nmetric: {name: val_accuracy, goal: maximize}\n"
        "parameters:\n  filters: {value: 2}\n",
        """model:
  layers:
    - {type: Input, shape: [28, 28]}
    - {type: Reshape, target_shape: [28, 28, 1]}
    - {type: Conv2D, filters: $filters, kernel_size: 3, strides: [1, 1], padding: same, activation: relu, use_bias: true}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: AveragePooling2D, pool_size: [2, 2], strides: 2, padding: valid}
    - {type: BatchNormalization, momentum: 0.9, epsilon: 0.001, center: true, scale: false}
    - {type: Reshape, target_shape: [7, 14]}
    - {type: LSTM, units: 4, return_sequences: false, activation: tanh, recurrent_activation: sigmoid}
    - {type: Activation, activation: relu}
    - {type: Dropout, rate: 0.1}
    - {type: Dense, units: 10, activation: softmax, use_bias: false, name: out}
  optimizer: {type: rmsprop, learning_rate: 0.001, rho: 0.9, momentum: 0.0, epsilon: 1.0e-7}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data: {train_samples: 100, test_samples: 0}
fit: {epochs: 2, batch_size: 10, validation_split: 0.2, shuffle: false,
      early_stopping: {monitor: val_accuracy, patience: 1}}
"""))
    write(r, "block_style_sgd.yaml", """# block style throughout, a bare optimizer name, embedded references
name: block-style
description: "MLP width: 8 or 16"
method: grid
metric:
  name: loss
parameters:
  hidden:
    values:
      - 8
      - 16
  opt:
    value: sgd
model:
  layers:
    - type: Flatten
    - type: Dense
      units: ${hidden}
      activation: relu
      name: "hidden-${hidden}"
    - type: Dense
      units: 10
  optimizer: $opt
  loss: mse
data:
  dataset: fashion_mnist
  directory: /usr/share/dataset-fashion-mnist
  train_samples: 60000
  test_samples: 10000
seed: 42
""")
    write(r, "adamw_quoted_values.yaml", sweep(
        "method: grid\nmetric: {name: accuracy}\nparameters:\n"
        "  hidden: {values: [\"32\", 32]}\n  wd: {values: [0.004, 1e-5]}\n  nest: {values: [true, false]}\n",
        TAIL.replace("{type: adam, learning_rate: 0.003}",
                     "{type: adamw, learning_rate: 0.001, weight_decay: $wd, beta_1: 0.9, "
                     "beta_2: 0.999, epsilon: 1.0e-7}")
            .replace("units: $hidden", "units: 32")))
    write(r, "sgd_nesterov_mse.yaml", sweep(
        "method: grid\nmetric: {name: loss}\nparameters:\n  hidden: {value: 8}\n  m: {values: [0.5, 0.9]}\n",
        TAIL.replace("{type: adam, learning_rate: 0.003}",
                     "{type: sgd, learning_rate: 0.01, momentum: $m, nesterov: true}")
            .replace("sparse_categorical_crossentropy", "categorical_crossentropy")))
    write(r, "no_parameters.yaml", sweep("method: grid\nmetric: {name: loss}\n"
                                         ).replace("$hidden", "8"))
    # A model file (`tabula train MODEL.yaml`): parse_trial_spec reads it.
    write(r, "model_file.yaml", """model:
  layers: [Flatten, {type: Dense, units: 10, activation: softmax}]
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data: {train_samples: 100, test_samples: 0}
fit: {validation_split: 0.2}
memory_limit: 64 MiB
seed: 7
""")


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    safetensors_seeds()
    idx_seeds()
    csv_seeds()
    sweep_yaml_seeds()
    for reader in sorted(p.name for p in CORPUS.iterdir()):
        files = sorted((CORPUS / reader).iterdir())
        print(f"{reader}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
