#include "support/gradient_check.hpp"

#include <cmath>
#include <sstream>
#include <vector>

#include "tabula/tabula.hpp"

namespace tabula::testing {

namespace {

Shape batched(std::int64_t rows, const Shape& s) {
  std::vector<std::int64_t> dims{rows};
  dims.insert(dims.end(), s.dims().begin(), s.dims().end());
  return Shape(dims);
}

double weighted_sum(LayerImpl& layer, const Tensor& x, const Tensor& y, const Tensor& r,
                    bool training) {
  layer.forward(x, y, training);
  const float* yv = y.data<float>();
  const float* rv = r.data<float>();
  double sum = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) sum += static_cast<double>(yv[i]) * rv[i];
  return sum;
}

}  // namespace

std::string check_gradients(LayerImpl& layer, const Shape& input,
                            const GradientCheckOptions& options) {
  if (!layer.built()) {
    layer.build(input);
    RandomGenerator rng(options.seed);
    layer.initialize(rng);
  }
  layer.allocate_gradients();
  layer.reserve(options.batch);
  set_seed(options.seed);
  Tensor x = random_normal(batched(options.batch, input));
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    float& v = x.data<float>()[i];
    if (std::fabs(v) < options.min_abs_input) v = v < 0 ? -options.min_abs_input : options.min_abs_input;
  }
  Tensor y = zeros(batched(options.batch, layer.output_shape()));
  Tensor r = random_normal(batched(options.batch, layer.output_shape()));
  Tensor dx = zeros(x.shape());

  weighted_sum(layer, x, y, r, options.training);
  Tensor dy = r.clone();  // backward may overwrite its dy
  layer.backward(x, y, dy, &dx);

  std::ostringstream failures;
  int reported = 0;
  std::int64_t skipped_kinks = 0, probed = 0;
  auto probe = [&](const std::string& what, const Tensor& values, const Tensor& analytic) {
    float* v = values.data<float>();
    const float* a = analytic.data<float>();
    const std::int64_t n = values.numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / options.max_checked_per_tensor);
    for (std::int64_t i = 0; i < n; i += stride) {
      ++probed;
      const float saved = v[i];
      v[i] = saved + options.epsilon;
      const double plus = weighted_sum(layer, x, y, r, options.training);
      v[i] = saved - options.epsilon;
      const double minus = weighted_sum(layer, x, y, r, options.training);
      v[i] = saved;
      const double numeric = (plus - minus) / (2.0 * options.epsilon);
      // Across a kink (relu at 0, a max-pooling tie) the one-sided slopes disagree and no
      // finite difference means anything: skip such probes rather than the whole check.
      const double centre = weighted_sum(layer, x, y, r, options.training);
      const double right = (plus - centre) / options.epsilon;
      const double left = (centre - minus) / options.epsilon;
      if (std::fabs(right - left) > options.absolute_tolerance +
                                       options.relative_tolerance *
                                           std::max(std::fabs(right), std::fabs(left))) {
        ++skipped_kinks;
        continue;
      }
      const double error = std::fabs(numeric - a[i]);
      if (error > options.absolute_tolerance +
                      options.relative_tolerance *
                          std::max(std::fabs(numeric), static_cast<double>(std::fabs(a[i])))) {
        if (reported++ < 5)
          failures << what << "[" << i << "]: analytic " << a[i] << ", numeric " << numeric
                   << "; ";
      }
    }
  };
  // Snapshot the analytic gradients first: probing reruns forward, not backward.
  std::vector<std::pair<Parameter*, Tensor>> grads;
  for (Parameter* p : layer.parameters())
    if (p->trainable) grads.emplace_back(p, p->gradient.clone());
  probe("dx", x, dx);
  for (auto& [p, g] : grads) probe(p->name, p->value, g);
  if (reported > 5) failures << "(" << reported << " mismatches in all)";
  // A check that skipped most of its probes checked nothing.
  if (skipped_kinks * 4 > probed)
    failures << skipped_kinks << " of " << probed << " probes straddled a kink; ";
  layer.release_batch_buffers();
  return failures.str();
}

}  // namespace tabula::testing
