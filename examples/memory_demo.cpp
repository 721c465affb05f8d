// The memory promises of tabula, shown step by step: allocate in a session, look at the
// figures, keep a handle, clear, and watch the OS's RSS come back.

#include <tabula/tabula.hpp>

#include <cstdio>
#include <vector>

namespace tb = tabula;

namespace {

std::size_t rss_bytes() { return tb::process_memory().rss; }

void show(const char* step, std::size_t baseline) {
  const long long delta = static_cast<long long>(rss_bytes()) - static_cast<long long>(baseline);
  std::printf("%-44s RSS %+9.1f MiB\n", step, static_cast<double>(delta) / (1 << 20));
}

}  // namespace

int main() {
  const std::size_t baseline = rss_bytes();
  std::printf("tabula %s: a session's memory is explicit, measured and really given back\n\n",
              TABULA_VERSION_STRING);
  show("start", baseline);

  tb::Session session({.device = tb::Device::cpu(), .memory_limit = 0, .name = "demo"});
  tb::Tensor kept;
  {
    tb::SessionScope use(session);
    std::vector<tb::Tensor> tensors;
    tensors.push_back(tb::random_normal({1024, 1024, 64}, 0.0, 0.05,
                                        {.category = tb::Category::weights, .name = "kernel"}));
    tensors.push_back(tb::zeros({1024, 1024, 64}, {.category = tb::Category::gradients}));
    tensors.push_back(tb::zeros({1024, 1024, 128}, {.category = tb::Category::optimizer}));
    tensors.push_back(tb::ones({60000, 28, 28}, {.name = "images"}));
    kept = tensors.front();
    show("allocated ~1.2 GiB in 4 tensors", baseline);

    std::printf("\nsession memory_info(): %s\n\nlive objects:\n",
                session.memory_info().str().c_str());
    for (const tb::LiveObject& o : session.live_objects()) {
      std::printf("  %-12s %-7s %-10s %10s  %ld handle(s)\n", o.name.c_str(), o.kind.c_str(),
                  std::string(tb::name_of(o.category)).c_str(), tb::format_bytes(o.bytes).c_str(),
                  o.handles);
    }
    std::printf("\n");
  }
  show("left the scope, one handle kept", baseline);

  session.clear();
  show("session.clear()", baseline);
  std::printf("\nafter clear: %s\n", session.memory_info().str().c_str());
  try {
    (void)kept.to_vector<float>();
  } catch (const tb::SessionCleared& e) {
    std::printf("using the kept handle throws SessionCleared:\n  %s\n\n", e.what());
  }

  tb::Session small({.device = tb::Device::cpu(), .memory_limit = 64 << 20, .name = "small"});
  tb::SessionScope use(small);
  tb::Tensor w = tb::zeros({4 << 20}, {.category = tb::Category::weights, .name = "w"});
  try {
    tb::Tensor too_big = tb::zeros({16 << 20});
  } catch (const tb::OutOfMemory& e) {
    std::printf("a 64 MiB session asked for 64 MiB more gets OutOfMemory:\n  %s\n", e.what());
  }
  tb::Tensor fine = tb::zeros({1 << 20});
  std::printf("\n...and keeps working afterwards: %s\n", small.memory_info().str().c_str());
  return 0;
}
