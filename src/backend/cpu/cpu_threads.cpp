#include "backend/cpu/thread_pool.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/threads.hpp"

namespace tabula {

void set_num_threads(int n) {
  TABULA_EXPECT(n >= 1, InvalidArgument, "set_num_threads", ">= 1", n);
  detail::ThreadPool::instance().resize(n);
}

int get_num_threads() noexcept { return detail::ThreadPool::instance().size(); }

}  // namespace tabula
