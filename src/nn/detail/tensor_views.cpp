#include "nn/detail/tensor_views.hpp"

#include "backend/detail/device_copy.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

void copy_from_host(const Tensor& t, const std::vector<float>& values) {
  TABULA_EXPECT(static_cast<std::int64_t>(values.size()) == t.numel(), InvalidArgument,
                "values for tensor '" << t.name() << "'", t.numel(), values.size());
  copy_bytes(t.raw_data(), t.device(), values.data(), Device::cpu(),
             values.size() * sizeof(float));
}

}  // namespace tabula::detail
