#include <cblas.h>

#include "tabula/core/errors.hpp"
#include "tabula/core/threads.hpp"

namespace tabula {

void set_num_threads(int n) {
  TABULA_EXPECT(n >= 1, InvalidArgument, "set_num_threads", ">= 1", n);
  openblas_set_num_threads(n);
}

int get_num_threads() noexcept { return openblas_get_num_threads(); }

}  // namespace tabula
