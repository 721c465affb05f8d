#pragma once
// The sweep `tabula demo` runs: written to the results directory as sweep.yaml, so the user
// can read it, rerun it with `tabula sweep`, and a child process (--isolate process) can load it.

namespace tabula::tools {

inline constexpr const char* kDemoSweep = R"yaml(# tabula demo: six Fashion-MNIST MLPs, each trained in a fresh session that is cleared
# when the trial ends. Rerun with:  tabula sweep sweep.yaml --out DIR
name: demo
description: MLP width and learning rate on Fashion-MNIST
method: grid
metric:
  name: test_accuracy
  goal: maximize
parameters:
  hidden:
    values: [64, 256, 1024]
  learning_rate:
    values: [0.001, 0.003]
model:
  layers:
    - type: Flatten
    - type: Dense
      units: ${hidden}
      activation: relu
    - type: Dense
      units: 10
      activation: softmax
  optimizer:
    type: adam
    learning_rate: ${learning_rate}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
data:
  dataset: fashion_mnist
  train_samples: 60000
  test_samples: 10000
fit:
  epochs: 2
  batch_size: 128
  validation_split: 0.1
)yaml";

}  // namespace tabula::tools
