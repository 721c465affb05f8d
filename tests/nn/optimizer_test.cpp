// Optimizer updates against known answers: two steps of each optimizer on one small
// parameter with given gradients, compared with PyTorch's optimizers
// (tests/fixtures/make_optimizers.py, float64 reference, float32 inputs). The script explains
// where Keras's rules (which tabula follows) differ from PyTorch's and how the reference is
// made to match Keras's.

#include "tabula/nn/optimizer.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "support/fixtures.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::compare;

constexpr const char* kFile = "optimizers.safetensors";

Tensor fixture(const std::string& name) { return testing::load_fixture(kFile, name); }

class OptimizerTest : public ::testing::Test {
 protected:
  Session session_{{.name = "optimizers"}};
  SessionScope use_{session_};

  // Runs `optimizer` for two steps (gradients g1, g2) from w0 and compares the parameter
  // after each step with "<name>/w1" and "<name>/w2".
  std::string two_steps(Optimizer optimizer, const std::string& name) {
    Parameter p;
    p.name = "w";
    p.value = fixture("w0").clone();
    p.gradient = zeros(p.value.shape(), {.category = Category::gradients});
    optimizer->build({&p});
    std::string failures;
    for (const char* step : {"1", "2"}) {
      const Tensor g = fixture(std::string("g") + step);
      std::memcpy(p.gradient.raw_data(), g.raw_data(), g.nbytes());
      optimizer->step();
      const std::string mismatch = compare(p.value, fixture(name + "/w" + step));
      if (!mismatch.empty()) failures += "step " + std::string(step) + ": " + mismatch + "; ";
    }
    return failures;
  }
};

TEST_F(OptimizerTest, PlainSgdStepsAgainstTheGradient) {
  EXPECT_EQ(two_steps(optimizers::SGD(0.1), "sgd"), "");
}

TEST_F(OptimizerTest, SgdWithMomentumMatchesPyTorch) {
  // Keras's velocity is PyTorch's momentum buffer times -lr: the same steps.
  EXPECT_EQ(two_steps(optimizers::SGD(0.1, 0.9), "sgd_momentum"), "");
}

TEST_F(OptimizerTest, SgdWithNesterovMomentumMatchesPyTorch) {
  EXPECT_EQ(two_steps(optimizers::SGD(0.1, 0.9, true), "sgd_nesterov"), "");
}

TEST_F(OptimizerTest, AdamAddsEpsilonBeforeBiasCorrectionAsKerasDoes) {
  // epsilon = 1e-3 and gradients down to 1e-4: where epsilon goes decides the answer.
  EXPECT_EQ(two_steps(optimizers::Adam(0.01, 0.9, 0.999, 1e-3), "adam"), "");
  EXPECT_NE(two_steps(optimizers::Adam(0.01, 0.9, 0.999, 1e-3), "adam_torch_eps"), "")
      << "PyTorch's placement of epsilon gives other steps; the test must tell them apart";
}

TEST_F(OptimizerTest, AdamWDecaysTheWeightsBeforeItsAdamStep) {
  EXPECT_EQ(two_steps(optimizers::AdamW(0.01, 0.1, 0.9, 0.999, 1e-3), "adamw"), "");
}

// Keras's RMSprop (keras/src/optimizers/rmsprop.py) puts epsilon inside the square root;
// PyTorch adds it outside. The inputs make the two rules differ by far more than the tolerance.
TEST_F(OptimizerTest, RmspropAddsEpsilonInsideTheSquareRootAsKerasDoes) {
  EXPECT_EQ(two_steps(optimizers::RMSprop(0.01, 0.9, 0.0, 1e-3), "rmsprop_keras"), "");
  EXPECT_EQ(two_steps(optimizers::RMSprop(0.01, 0.9, 0.5, 1e-3), "rmsprop_keras_momentum"), "");
  EXPECT_NE(two_steps(optimizers::RMSprop(0.01, 0.9, 0.0, 1e-3), "rmsprop"), "");
}

TEST_F(OptimizerTest, ResetZeroesTheStateSoTheNextStepIsAFirstStep) {
  Optimizer adam = optimizers::Adam(0.01, 0.9, 0.999, 1e-3);
  Parameter p;
  p.name = "w";
  p.value = fixture("w0").clone();
  p.gradient = fixture("g1").clone();
  adam->build({&p});
  adam->step();
  adam->step();
  EXPECT_EQ(adam->iterations(), 2);
  adam->reset();
  EXPECT_EQ(adam->iterations(), 0);
  std::memcpy(p.value.raw_data(), fixture("w0").raw_data(), p.value.nbytes());
  adam->step();
  EXPECT_EQ(compare(p.value, fixture("adam/w1")), "");
}

}  // namespace
}  // namespace tabula
