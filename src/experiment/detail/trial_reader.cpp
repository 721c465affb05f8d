#include "experiment/detail/trial_reader.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "tabula/core/errors.hpp"
#include "tabula/nn/layers/activation_layer.hpp"
#include "tabula/nn/layers/batch_normalization.hpp"
#include "tabula/nn/layers/conv2d.hpp"
#include "tabula/nn/layers/dense.hpp"
#include "tabula/nn/layers/dropout.hpp"
#include "tabula/nn/layers/lstm.hpp"
#include "tabula/nn/layers/pooling.hpp"
#include "tabula/nn/layers/reshaping.hpp"
#include "tabula/nn/sequential.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula::experiment::detail {

namespace {

constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();

// Bounds on the sizes a file may give a layer, far above anything trained on Fashion-MNIST:
// within them every size a layer computes (weights, outputs) fits in int64, which the layers
// themselves do not check, so a typo like `units: 9e18` is a file error and not an overflow.
constexpr std::int64_t kMaxUnits = std::int64_t{1} << 16;            // units, filters
constexpr std::int64_t kMaxWindow = 256;                             // kernel, pool, stride
constexpr std::int64_t kMaxSampleElements = std::int64_t{1} << 28;   // after any layer

// Reading a file must not cost what training its model does: the check by building holds at
// most this much, and a larger model is checked up to the layer that does not fit in it.
constexpr std::size_t kMaxCheckBytes = std::size_t{256} << 20;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The library's message without its " [src/...:N]" suffix: the file's position replaces it.
std::string without_location(const std::string& message) {
  const std::size_t at = message.rfind(" [");
  return at != std::string::npos && message.back() == ']' ? message.substr(0, at) : message;
}

std::pair<std::int64_t, std::int64_t> pair_of(const SpecNode& node) {
  const auto v = node.as_int_list(2);
  for (auto x : v)
    if (x <= 0 || x > kMaxWindow) node.fail("positive integers up to " + std::to_string(kMaxWindow));
  return {v[0], v[1]};
}

// An integer the layer checks for itself, except that it may not be absurdly large.
std::int64_t size_at_most(const SpecNode& node, std::int64_t max) {
  const std::int64_t v = node.as_int();
  if (v > max) node.fail("an integer up to " + std::to_string(max));
  return v;
}

// The elements of a sample of `dims` (those > 0; Reshape infers a -1), or nothing above
// kMaxSampleElements.
std::optional<std::int64_t> sample_elements(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (auto d : dims)
    if (d > 0 && (d > kMaxSampleElements || (n *= d) > kMaxSampleElements)) return std::nullopt;
  return n;
}

// `shape` or `target_shape`, with the element count bounded; the layer checks the extents.
std::vector<std::int64_t> extents_of(const SpecNode& node) {
  auto dims = node.as_int_list();
  if (!sample_elements(dims))
    node.fail("extents whose product is at most " + std::to_string(kMaxSampleElements));
  return dims;
}

// "(28, 28, 1)", as Shape::str() writes it, for extents that may not make a Shape (a -1).
std::string extents_text(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

// Builds the description "Dense(units=128, activation=relu)" as the fields are read.
class Described {
 public:
  explicit Described(std::string type) : text_(std::move(type)) {}
  template <typename T>
  T add(const std::string& key, T value) {
    if constexpr (std::is_same_v<T, std::string>) {
      append(key + "=" + value);
    } else if constexpr (std::is_same_v<T, bool>) {
      append(key + "=" + (value ? "true" : "false"));
    } else {
      append(key + "=" + to_string(ParameterValue(value)));
    }
    return value;
  }
  void append(const std::string& field) { fields_ += (fields_.empty() ? "" : ", ") + field; }
  std::string str() const { return text_ + "(" + fields_ + ")"; }

 private:
  std::string text_;
  std::string fields_;
};

LayerSpec read_layer(const SpecNode& node) {
  if (node.is_scalar()) {  // "- Flatten"
    const std::string type = node.as_string();
    if (lower(type) != "flatten") node.fail("a map {type: ..., ...} (only Flatten may be a bare name)");
    return {"Flatten", "Flatten()", node.line(), [] { return layers::Flatten(); }};
  }
  const std::string type = node.at("type").as_string();
  const std::string t = lower(type);
  auto opt_string = [&](const char* key, std::string fallback) {
    return node.has(key) ? node.at(key).as_string() : fallback;
  };
  auto opt_bool = [&](const char* key, bool fallback) {
    return node.has(key) ? node.at(key).as_bool() : fallback;
  };
  auto opt_double = [&](const char* key, double fallback) {
    return node.has(key) ? node.at(key).as_double() : fallback;
  };
  const std::string name = opt_string("name", "");
  LayerSpec spec;
  spec.line = node.line();

  if (t == "input") {
    node.expect_map({"type", "name", "shape"});
    const auto shape = extents_of(node.at("shape"));
    spec.type = "Input";
    spec.description = "Input(shape=" + extents_text(shape) + ")";
    spec.make = [shape, name] { return layers::Input(Shape(shape), name); };
  } else if (t == "flatten") {
    node.expect_map({"type", "name"});
    spec.type = "Flatten";
    spec.description = "Flatten()";
    spec.make = [name] { return layers::Flatten(name); };
  } else if (t == "reshape") {
    node.expect_map({"type", "name", "target_shape"});
    const auto target = extents_of(node.at("target_shape"));
    spec.type = "Reshape";
    spec.description = "Reshape(target_shape=" + extents_text(target) + ")";
    spec.make = [target, name] { return layers::Reshape(target, name); };
  } else if (t == "dense") {
    node.expect_map({"type", "name", "units", "activation", "use_bias"});
    Described d("Dense");
    const auto units = d.add("units", size_at_most(node.at("units"), kMaxUnits));
    const auto activation = d.add("activation", opt_string("activation", "linear"));
    const bool use_bias = opt_bool("use_bias", true);
    spec.type = "Dense";
    spec.description = d.str();
    spec.make = [=] { return layers::Dense(units, activation, {.use_bias = use_bias, .name = name}); };
  } else if (t == "activation") {
    node.expect_map({"type", "name", "activation"});
    const std::string activation = node.at("activation").as_string();
    spec.type = "Activation";
    spec.description = "Activation(" + activation + ")";
    spec.make = [=] { return layers::Activation(activation, name); };
  } else if (t == "dropout") {
    node.expect_map({"type", "name", "rate"});
    Described d("Dropout");
    const double rate = d.add("rate", node.at("rate").as_double());
    spec.type = "Dropout";
    spec.description = d.str();
    spec.make = [=] { return layers::Dropout(rate, name); };
  } else if (t == "conv2d") {
    node.expect_map({"type", "name", "filters", "kernel_size", "strides", "padding", "activation",
                     "use_bias"});
    Described d("Conv2D");
    const auto filters = d.add("filters", size_at_most(node.at("filters"), kMaxUnits));
    const auto kernel = pair_of(node.at("kernel_size"));
    d.append("kernel_size=(" + std::to_string(kernel.first) + ", " + std::to_string(kernel.second) + ")");
    const auto strides = node.has("strides") ? pair_of(node.at("strides")) : std::pair<std::int64_t, std::int64_t>{1, 1};
    const auto padding = d.add("padding", opt_string("padding", "valid"));
    const auto activation = d.add("activation", opt_string("activation", "linear"));
    const bool use_bias = opt_bool("use_bias", true);
    spec.type = "Conv2D";
    spec.description = d.str();
    spec.make = [=] {
      return layers::Conv2D(filters, kernel, activation,
                            {.strides = strides, .padding = padding, .use_bias = use_bias, .name = name});
    };
  } else if (t == "maxpooling2d" || t == "averagepooling2d") {
    node.expect_map({"type", "name", "pool_size", "strides", "padding"});
    const bool max = t == "maxpooling2d";
    const auto pool = node.has("pool_size") ? pair_of(node.at("pool_size")) : std::pair<std::int64_t, std::int64_t>{2, 2};
    std::optional<std::pair<std::int64_t, std::int64_t>> strides;
    if (node.has("strides")) strides = pair_of(node.at("strides"));
    const std::string padding = opt_string("padding", "valid");
    spec.type = max ? "MaxPooling2D" : "AveragePooling2D";
    spec.description = spec.type + "(pool_size=(" + std::to_string(pool.first) + ", " +
                       std::to_string(pool.second) + "), padding=" + padding + ")";
    spec.make = [=] {
      const layers::Pool2DOptions o{.strides = strides, .padding = padding, .name = name};
      return max ? layers::MaxPooling2D(pool, o) : layers::AveragePooling2D(pool, o);
    };
  } else if (t == "batchnormalization") {
    node.expect_map({"type", "name", "momentum", "epsilon", "center", "scale"});
    layers::BatchNormalizationOptions o;
    o.momentum = opt_double("momentum", o.momentum);
    o.epsilon = opt_double("epsilon", o.epsilon);
    o.center = opt_bool("center", o.center);
    o.scale = opt_bool("scale", o.scale);
    o.name = name;
    spec.type = "BatchNormalization";
    spec.description = "BatchNormalization()";
    spec.make = [o] { return layers::BatchNormalization(o); };
  } else if (t == "lstm") {
    node.expect_map({"type", "name", "units", "return_sequences", "activation",
                     "recurrent_activation", "use_bias", "unit_forget_bias"});
    Described d("LSTM");
    const auto units = d.add("units", size_at_most(node.at("units"), kMaxUnits));
    layers::LSTMOptions o;
    o.return_sequences = d.add("return_sequences", opt_bool("return_sequences", false));
    o.activation = opt_string("activation", o.activation);
    o.recurrent_activation = opt_string("recurrent_activation", o.recurrent_activation);
    o.use_bias = opt_bool("use_bias", o.use_bias);
    o.unit_forget_bias = opt_bool("unit_forget_bias", o.unit_forget_bias);
    o.name = name;
    spec.type = "LSTM";
    spec.description = d.str();
    spec.make = [=] { return layers::LSTM(units, o); };
  } else {
    node.at("type").fail(
        "a layer type (Input, Flatten, Reshape, Dense, Activation, Dropout, Conv2D, "
        "MaxPooling2D, AveragePooling2D, BatchNormalization, LSTM)");
  }
  return spec;
}

OptimizerSpec read_optimizer(const SpecNode& node) {
  OptimizerSpec spec;
  spec.line = node.line();
  const std::string type = lower(node.is_scalar() ? node.as_string() : node.at("type").as_string());
  auto num = [&](const char* key, double fallback) {
    return node.is_map() && node.has(key) ? node.at(key).as_double() : fallback;
  };
  Described d(type);
  if (type == "sgd") {
    if (node.is_map()) node.expect_map({"type", "learning_rate", "momentum", "nesterov"});
    const double lr = d.add("learning_rate", num("learning_rate", 0.01));
    const double momentum = d.add("momentum", num("momentum", 0.0));
    const bool nesterov = node.is_map() && node.has("nesterov") ? node.at("nesterov").as_bool() : false;
    spec.make = [=] { return optimizers::SGD(lr, momentum, nesterov); };
  } else if (type == "adam" || type == "adamw") {
    const bool w = type == "adamw";
    if (node.is_map()) {
      if (w) node.expect_map({"type", "learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon"});
      else node.expect_map({"type", "learning_rate", "beta_1", "beta_2", "epsilon"});
    }
    const double lr = d.add("learning_rate", num("learning_rate", 0.001));
    const double decay = w ? d.add("weight_decay", num("weight_decay", 0.004)) : 0.0;
    const double b1 = num("beta_1", 0.9), b2 = num("beta_2", 0.999), eps = num("epsilon", 1e-7);
    spec.make = [=] {
      return w ? optimizers::AdamW(lr, decay, b1, b2, eps) : optimizers::Adam(lr, b1, b2, eps);
    };
  } else if (type == "rmsprop") {
    if (node.is_map()) node.expect_map({"type", "learning_rate", "rho", "momentum", "epsilon"});
    const double lr = d.add("learning_rate", num("learning_rate", 0.001));
    const double rho = num("rho", 0.9), momentum = num("momentum", 0.0), eps = num("epsilon", 1e-7);
    spec.make = [=] { return optimizers::RMSprop(lr, rho, momentum, eps); };
  } else {
    (node.is_scalar() ? node : node.at("type")).fail("an optimizer (sgd, adam, adamw, rmsprop)");
  }
  spec.description = d.str();
  return spec;
}

DataSpec read_data(const SpecNode& node) {
  node.expect_map({"dataset", "directory", "train_samples", "test_samples"});
  DataSpec data;
  if (node.has("dataset")) {
    data.dataset = node.at("dataset").as_string();
    if (data.dataset != "fashion_mnist") node.at("dataset").fail("'fashion_mnist'");
  }
  if (node.has("directory")) data.directory = node.at("directory").as_string();
  if (node.has("train_samples")) data.train_samples = node.at("train_samples").as_int(1, 60000);
  if (node.has("test_samples")) data.test_samples = node.at("test_samples").as_int(0, 10000);
  return data;
}

FitSpec read_fit(const SpecNode& node) {
  node.expect_map({"epochs", "batch_size", "validation_split", "shuffle", "early_stopping"});
  FitSpec fit;
  if (node.has("epochs")) fit.epochs = static_cast<int>(node.at("epochs").as_int(1, 1000000));
  if (node.has("batch_size")) fit.batch_size = node.at("batch_size").as_int(1, kMaxInt);
  if (node.has("validation_split")) {
    const SpecNode v = node.at("validation_split");
    fit.validation_split = v.as_double();
    if (fit.validation_split < 0 || fit.validation_split >= 1) v.fail("a number in [0, 1)");
  }
  if (node.has("shuffle")) fit.shuffle = node.at("shuffle").as_bool();
  if (node.has("early_stopping")) {
    const SpecNode es = node.at("early_stopping");
    es.expect_map({"monitor", "patience"});
    fit.early_stopping_monitor = es.has("monitor") ? es.at("monitor").as_string() : "val_loss";
    if (es.has("patience"))
      fit.early_stopping_patience = static_cast<int>(es.at("patience").as_int(0, 1000000));
  }
  return fit;
}

// Makes the model once in a scratch session limited like the trial, so that what the layers,
// the optimizer and (with `build`) compile refuse is reported against the file. A model too
// large for its limit is not a file error: that trial will fail with OutOfMemory when it runs.
void check_by_building(const TrialSpec& spec, const SpecNode& root, TrialCheck check,
                       Session* shared) {
  const SpecNode model = root.at("model");
  const std::size_t limit =
      spec.memory_limit == 0 ? kMaxCheckBytes : std::min(spec.memory_limit, kMaxCheckBytes);
  std::optional<Session> own;
  Session& scratch = check == TrialCheck::make && shared != nullptr
                         ? *shared
                         : own.emplace(SessionOptions{
                               .device = Device::cpu(), .memory_limit = limit, .name = "check"});
  SessionScope use(scratch);
  std::vector<Layer> layers;
  const std::vector<SpecNode> items = model.at("layers").items();
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    try {
      layers.push_back(spec.layers[i].make());
    } catch (const InvalidArgument& e) {
      items[i].fail_message(without_location(e.what()));
    }
  }
  Optimizer optimizer;
  try {
    optimizer = spec.optimizer.make();
  } catch (const InvalidArgument& e) {
    model.at("optimizer").fail_message(without_location(e.what()));
  }
  if (check == TrialCheck::build) {
    try {
      // Layer by layer first, so that a shape that does not fit names its layer's line.
      Shape shape{28, 28};  // Fashion-MNIST's per-sample shape
      for (std::size_t i = 0; i < layers.size(); ++i) {
        try {
          shape = layers[i]->build(shape);
        } catch (const InvalidArgument& e) {
          items[i].fail_message("does not fit its input (Fashion-MNIST's images are (28, 28)): " +
                                without_location(e.what()));
        }
        // Bounds the next layer's input, as the file's bounds do its arguments.
        if (!sample_elements(shape.dims()))
          items[i].fail_message("gives samples of " + shape.str() + ": expected at most " +
                                std::to_string(kMaxSampleElements) + " elements");
      }
      layers.clear();
      std::vector<Layer> fresh;
      for (const LayerSpec& l : spec.layers) fresh.push_back(l.make());
      Sequential m(std::move(fresh));
      m.build({28, 28});
      try {
        m.compile(optimizer, spec.loss, spec.metrics);
      } catch (const InvalidArgument& e) {
        model.at("loss").fail_message(without_location(e.what()));
      }
    } catch (const OutOfMemory&) {
      // Too large for the trial's limit: recorded as that trial's failure when it runs.
    }
  }
  if (spec.fit.early_stopping_monitor) {
    const auto names = spec.result_names();
    const std::string& monitor = *spec.fit.early_stopping_monitor;
    if (monitor.rfind("test_", 0) == 0 ||
        std::find(names.begin(), names.end(), monitor) == names.end()) {
      std::string known;
      for (const auto& n : names)
        if (n.rfind("test_", 0) != 0) known += (known.empty() ? "" : ", ") + n;
      root.at("fit").at("early_stopping").fail_message(
          "monitor '" + monitor + "' is not a figure fit reports; it reports: " + known);
    }
  }
}

}  // namespace

TrialSpec read_trial(const SpecNode& root, TrialCheck check, Session* scratch) {
  TrialSpec spec;
  const SpecNode model = root.at("model");
  model.expect_map({"layers", "optimizer", "loss", "metrics"});
  for (const SpecNode& item : model.at("layers").items()) spec.layers.push_back(read_layer(item));
  if (spec.layers.empty()) model.at("layers").fail("at least one layer");
  spec.optimizer = model.has("optimizer") ? read_optimizer(model.at("optimizer"))
                                          : OptimizerSpec{"Adam(learning_rate=0.001)", model.line(),
                                                          [] { return optimizers::Adam(); }};
  spec.loss = model.at("loss").as_string();
  if (model.has("metrics"))
    for (const SpecNode& m : model.at("metrics").items()) spec.metrics.push_back(m.as_string());
  if (root.has("data")) spec.data = read_data(root.at("data"));
  if (root.has("fit")) spec.fit = read_fit(root.at("fit"));
  if (root.has("memory_limit")) spec.memory_limit = root.at("memory_limit").as_bytes();
  if (spec.fit.validation_split * static_cast<double>(spec.data.train_samples) >=
      static_cast<double>(spec.data.train_samples) - 1)
    root.at("fit").at("validation_split").fail("a split that leaves training samples");
  check_by_building(spec, root, check, scratch);
  return spec;
}

}  // namespace tabula::experiment::detail
