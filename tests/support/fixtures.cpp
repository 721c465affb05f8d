#include "support/fixtures.hpp"

#include <cmath>
#include <sstream>

#include "tabula/core/errors.hpp"
#include "tabula/io/safetensors.hpp"

namespace tabula::testing {

std::string fixture_path(const std::string& file) {
  return std::string(TABULA_TEST_FIXTURES_DIR) + "/" + file;
}

Tensor load_fixture(const std::string& file, const std::string& name) {
  const auto fixture = io::SafetensorsFile::open(fixture_path(file));
  const io::SafetensorsEntry* entry = fixture.find(name);
  if (entry == nullptr) TABULA_THROW(Error, "fixture " << file << " has no tensor '" << name << "'");
  return fixture.load(*entry);
}

std::string compare(const Tensor& actual, const Tensor& expected, double relative,
                    double absolute) {
  std::ostringstream out;
  if (!(actual.shape() == expected.shape())) {
    out << "shape " << actual.shape().str() << " != expected " << expected.shape().str();
    return out.str();
  }
  const auto a = actual.to_vector<float>();
  const auto e = expected.to_vector<float>();
  int reported = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double tolerance = absolute + relative * std::fabs(static_cast<double>(e[i]));
    if (!(std::fabs(static_cast<double>(a[i]) - e[i]) <= tolerance) && reported++ < 5)
      out << "[" << i << "] " << a[i] << " != " << e[i] << "; ";
  }
  if (reported > 5) out << "(" << reported << " mismatches)";
  return out.str();
}

}  // namespace tabula::testing
