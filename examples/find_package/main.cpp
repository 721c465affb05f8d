// Uses tabula the way an outside project does: find_package(tabula), link tabula::tabula.
// Exits 0 only if clearing the session gives back every byte it accounted.
#include <cstdio>

#include <tabula/tabula.hpp>

namespace tb = tabula;

int main() {
  tb::Session s({.device = tb::Device::cpu(), .memory_limit = 0, .name = "consumer"});
  tb::SessionScope use(s);

  auto t = tb::zeros({256, 256});
  std::printf("in use after zeros({256, 256}): %zu bytes\n",
              static_cast<std::size_t>(s.memory_info().current));

  s.clear();
  const auto after = static_cast<std::size_t>(s.memory_info().current);
  std::printf("in use after clear():          %zu bytes\n", after);

  return after == 0 ? 0 : 1;
}
