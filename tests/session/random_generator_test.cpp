#include "tabula/session/random_generator.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tabula {
namespace {

// Known answer from the Random123 reference (kat_vectors): philox4x32_10 with a zero counter
// and a zero key.
TEST(RandomGenerator, MatchesThePhiloxReferenceVector) {
  RandomGenerator rng(0);
  std::uint32_t block[4];
  rng.next_block(block);
  EXPECT_EQ(block[0], 0x6627e8d5u);
  EXPECT_EQ(block[1], 0xe169c58du);
  EXPECT_EQ(block[2], 0xbc57ac4cu);
  EXPECT_EQ(block[3], 0x9b00dbd8u);
}

TEST(RandomGenerator, ReseedingRestartsTheStream) {
  RandomGenerator rng(99);
  std::vector<float> a(37), b(37);
  rng.fill_normal(a.data(), a.size(), 0, 1);
  rng.seed(99);
  rng.fill_normal(b.data(), b.size(), 0, 1);
  EXPECT_EQ(a, b);
}

TEST(RandomGenerator, TruncatedNormalStaysWithinTwoDeviations) {
  RandomGenerator rng(5);
  std::vector<float> v(10000);
  rng.fill_truncated_normal(v.data(), v.size(), 1.0f, 0.5f);
  for (float x : v) {
    ASSERT_GE(x, 0.0f);
    ASSERT_LE(x, 2.0f);
  }
}

TEST(RandomGenerator, UniformIndexCoversItsRangeOnly) {
  RandomGenerator rng(3);
  std::vector<int> seen(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const auto k = rng.uniform_index(7);
    ASSERT_LT(k, 7u);
    ++seen[k];
  }
  for (int count : seen) EXPECT_GT(count, 800);
}

}  // namespace
}  // namespace tabula
