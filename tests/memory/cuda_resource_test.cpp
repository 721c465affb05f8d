#include "tabula/memory/cuda_resource.hpp"

#include <gtest/gtest.h>

#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/pool_resource.hpp"

namespace tabula {
namespace {

#if TABULA_WITH_CUDA

TEST(CudaResource, AllocatesAndFreesDeviceMemoryUnderAPool) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  CudaResource gpu(Device::cuda(0));
  PoolResource pool(gpu);
  void* p = pool.allocate(1 << 20);
  EXPECT_NE(p, nullptr);
  pool.deallocate(p, 1 << 20);
  EXPECT_EQ(pool.release(), std::size_t{2} << 20);
}

TEST(CudaResource, RefusesADeviceThatIsNotPresent) {
  EXPECT_THROW(CudaResource(Device::cuda(cuda_device_count())), Error);
}

#else

TEST(CudaResource, SaysClearlyThatThisBuildHasNoCuda) {
  try {
    CudaResource gpu(Device::cuda(0));
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA support"), std::string::npos) << e.what();
  }
}

#endif

}  // namespace
}  // namespace tabula
