// Dropout's gradients: with a fixed mask while training (the function is then linear, and
// finite differences see exactly the mask backward uses), and as the identity at inference.

#include "tabula/nn/layers/dropout.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/gradient_check.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

class DropoutTest : public ::testing::Test {
 protected:
  Session session_{{.name = "dropout", .seed = 13}};
  SessionScope use_{session_};
};

// Dropout draws a new mask from the session's generator on every training forward pass, so
// the many forward passes of a finite-difference check would each see another function.
// This wrapper restarts the session's stream before each pass: every pass draws the same
// mask, and backward uses the mask of the last pass, as in training.
class FixedMaskDropout final : public LayerImpl {
 public:
  FixedMaskDropout(double rate, std::uint64_t mask_seed)
      : LayerImpl("fixed_mask", {}), inner_(layers::Dropout(rate)), mask_seed_(mask_seed) {}
  std::string type_name() const override { return "FixedMaskDropout"; }
  Shape do_build(const Shape& input) override { return inner_->build(input); }
  void do_reserve(std::int64_t batch, bool training) override { inner_->reserve(batch, training); }
  void do_release_batch_buffers() noexcept override { inner_->release_batch_buffers(); }
  void forward(const Tensor& x, const Tensor& y, bool training) override {
    current_session().set_seed(mask_seed_);
    inner_->forward(x, y, training);
  }
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    inner_->backward(x, y, dy, dx);
  }

 private:
  Layer inner_;
  std::uint64_t mask_seed_;
};

TEST_F(DropoutTest, TrainingGradientsWithAFixedMaskMatchFiniteDifferences) {
  for (double rate : {0.1, 0.5, 0.8}) {
    FixedMaskDropout dropout(rate, 99);
    EXPECT_EQ(testing::check_gradients(dropout, {4, 5}, {.batch = 4, .training = true}), "")
        << "rate " << rate;
  }
}

TEST_F(DropoutTest, TheFixedMaskDropsSomeInputsAndScalesTheRest) {
  // Guards the check above: with a mask that dropped nothing (or everything) it would test
  // only the identity (or zero).
  FixedMaskDropout dropout(0.5, 99);
  dropout.build({200});
  dropout.reserve(2);
  const Tensor x = ones({2, 200});
  const Tensor y = zeros({2, 200});
  dropout.forward(x, y, true);
  const auto first = y.to_vector<float>();
  const auto dropped = std::count(first.begin(), first.end(), 0.0f);
  const auto kept = std::count(first.begin(), first.end(), 2.0f);
  EXPECT_GT(dropped, 100);
  EXPECT_GT(kept, 100);
  EXPECT_EQ(dropped + kept, 400);
  dropout.forward(x, y, true);
  EXPECT_EQ(y.to_vector<float>(), first) << "the same mask on every pass";
  dropout.release_batch_buffers();
}

TEST_F(DropoutTest, InferenceIsTheIdentityAndSoIsItsGradient) {
  Layer dropout = layers::Dropout(0.5);
  EXPECT_EQ(testing::check_gradients(dropout.impl(), {3, 4}, {.training = false}), "");
  dropout->reserve(3);
  const Tensor x = random_normal({3, 3, 4});
  const Tensor y = zeros({3, 3, 4});
  dropout->forward(x, y, false);
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
  const Tensor dy = random_normal({3, 3, 4});
  const Tensor dx = zeros({3, 3, 4});
  dropout->backward(x, y, dy, &dx);
  EXPECT_EQ(dx.to_vector<float>(), dy.to_vector<float>());
}

TEST_F(DropoutTest, ARateOfZeroIsTheIdentityEvenWhileTraining) {
  Layer dropout = layers::Dropout(0.0);
  EXPECT_EQ(testing::check_gradients(dropout.impl(), {6}, {.training = true}), "");
}

TEST_F(DropoutTest, RejectsRatesOutsideZeroToOne) {
  EXPECT_THROW(layers::Dropout(-0.1), InvalidArgument);
  EXPECT_THROW(layers::Dropout(1.0), InvalidArgument);
  EXPECT_NO_THROW(layers::Dropout(0.0));
}

}  // namespace
}  // namespace tabula
