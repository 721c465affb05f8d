#include "tabula/experiment/trial_spec.hpp"

#include <fstream>
#include <sstream>

#include "experiment/detail/spec_file.hpp"
#include "experiment/detail/trial_reader.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::experiment {

std::vector<std::string> TrialSpec::result_names() const {
  std::vector<std::string> base = {"loss"};
  for (const auto& m : metrics) base.push_back(m);
  std::vector<std::string> names = base;
  if (fit.validation_split > 0)
    for (const auto& n : base) names.push_back("val_" + n);
  if (data.test_samples > 0)
    for (const auto& n : base) names.push_back("test_" + n);
  return names;
}

Sequential TrialSpec::make_model() const {
  std::vector<Layer> made;
  for (const LayerSpec& l : layers) made.push_back(l.make());
  Sequential model(std::move(made));
  model.compile(optimizer.make(), loss, metrics);
  return model;
}

TrialSpec parse_trial_spec(const std::string& text, const std::string& source) {
  const YAML::Node document = detail::parse_yaml(text, source);
  const detail::SpecContext context{source, nullptr};
  const detail::SpecNode root = detail::SpecNode::root(document, context);
  std::vector<std::string_view> keys(detail::kTrialKeys);
  keys.push_back("seed");
  keys.push_back("name");
  root.expect_map(keys);
  TrialSpec spec = detail::read_trial(root);
  spec.source = source;
  if (root.has("seed"))
    spec.seed = static_cast<std::uint64_t>(root.at("seed").as_int(0, INT64_MAX));
  return spec;
}

TrialSpec load_trial_spec(const std::string& path) {
  return parse_trial_spec(detail::read_text_file(path), path);
}

}  // namespace tabula::experiment
