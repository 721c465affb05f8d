// libFuzzer target: any text, read as a sweep file (parse_sweep) and as a model file
// (parse_trial_spec), either throws a tabula::Error naming the file, or gives a plan whose
// trials can describe themselves.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_contract.hpp"
#include "tabula/experiment/sweep_spec.hpp"

namespace {

constexpr const char* kName = "fuzz.yaml";

namespace ex = tabula::experiment;

void describe(const ex::TrialSpec& spec) {
  (void)spec.result_names();
  for (const auto& layer : spec.layers) (void)layer.description.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool sweep = tabula::fuzz::read_or_refuse(kName, [&] {
    const ex::SweepSpec spec = ex::parse_sweep(text, kName);
    for (const auto& trial : spec.trials) {
      (void)ex::to_string(trial.parameters);
      describe(trial.spec);
    }
  });
  const bool model = tabula::fuzz::read_or_refuse(kName, [&] {
    describe(ex::parse_trial_spec(text, kName));
  });
  tabula::fuzz::last_input_accepted = sweep || model;
  return 0;
}
