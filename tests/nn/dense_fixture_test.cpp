// Dense (every activation) and the losses against PyTorch's answers
// (tests/fixtures/make_dense.py, float64 reference, float32 inputs).

#include <gtest/gtest.h>

#include <cstring>

#include "nn/detail/loss.hpp"
#include "support/fixtures.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::compare;

constexpr const char* kFile = "dense.safetensors";

Tensor fixture(const std::string& name) { return testing::load_fixture(kFile, name); }

void copy_into(const Tensor& destination, const Tensor& source) {
  ASSERT_EQ(destination.shape(), source.shape());
  std::memcpy(destination.raw_data(), source.raw_data(), source.nbytes());
}

class DenseFixtureTest : public ::testing::Test {
 protected:
  Session session_{{.name = "dense_fixture"}};
  SessionScope use_{session_};
};

TEST_F(DenseFixtureTest, ForwardAndGradientsMatchPyTorchForEveryActivation) {
  const Tensor x = fixture("x"), r = fixture("r");
  for (const char* activation : {"linear", "relu", "sigmoid", "tanh", "softmax"}) {
    SCOPED_TRACE(activation);
    Layer dense = layers::Dense(5, activation);
    dense->build({6});
    dense->allocate_gradients();
    copy_into(dense->parameters()[0]->value, fixture("kernel"));
    copy_into(dense->parameters()[1]->value, fixture("bias"));
    Tensor y = zeros({4, 5}), dx = zeros({4, 6});
    dense->forward(x, y, true);
    EXPECT_EQ(compare(y, fixture(std::string(activation) + "/y")), "");
    Tensor dy = r.clone();
    dense->backward(x, y, dy, &dx);
    EXPECT_EQ(compare(dx, fixture(std::string(activation) + "/dx")), "");
    EXPECT_EQ(compare(dense->parameters()[0]->gradient,
                      fixture(std::string(activation) + "/dkernel")), "");
    EXPECT_EQ(compare(dense->parameters()[1]->gradient,
                      fixture(std::string(activation) + "/dbias")), "");
  }
}

double scalar(const Tensor& t) { return t.to_vector<float>()[0]; }

TEST_F(DenseFixtureTest, LossesAndTheirGradientsMatchPyTorch) {
  using detail::Loss;
  const Tensor p = fixture("loss/p");
  Tensor grad = zeros(p.shape());
  const double cce = Loss::from_name("categorical_crossentropy")
                         .compute(p, fixture("loss/onehot"), &grad, false);
  EXPECT_NEAR(cce, scalar(fixture("loss/cce")), 1e-5 * scalar(fixture("loss/cce")));
  EXPECT_EQ(compare(grad, fixture("loss/cce_grad")), "");

  const double sparse = Loss::from_name("sparse_categorical_crossentropy")
                            .compute(p, fixture("loss/labels"), &grad, false);
  EXPECT_NEAR(sparse, scalar(fixture("loss/cce")), 1e-5 * scalar(fixture("loss/cce")));
  EXPECT_EQ(compare(grad, fixture("loss/cce_grad")), "");

  const Tensor q = fixture("loss/q");
  Tensor bgrad = zeros(q.shape());
  const double bce =
      Loss::from_name("binary_crossentropy").compute(q, fixture("loss/t"), &bgrad, false);
  EXPECT_NEAR(bce, scalar(fixture("loss/bce")), 1e-5 * scalar(fixture("loss/bce")));
  EXPECT_EQ(compare(bgrad, fixture("loss/bce_grad")), "");

  const Tensor a = fixture("loss/a"), b = fixture("loss/b");
  Tensor rgrad = zeros(a.shape());
  const double mse = Loss::from_name("mse").compute(a, b, &rgrad, false);
  EXPECT_NEAR(mse, scalar(fixture("loss/mse")), 1e-5 * scalar(fixture("loss/mse")));
  EXPECT_EQ(compare(rgrad, fixture("loss/mse_grad")), "");
  const double mae = Loss::from_name("mae").compute(a, b, &rgrad, false);
  EXPECT_NEAR(mae, scalar(fixture("loss/mae")), 1e-5 * scalar(fixture("loss/mae")));
  EXPECT_EQ(compare(rgrad, fixture("loss/mae_grad")), "");
}

}  // namespace
}  // namespace tabula
