// libFuzzer target: magnet URIs. An accepted magnet must survive to_magnet_uri -> parse_magnet unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/magnet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ph::percent_decode(in, true);
  auto m = ph::parse_magnet(in);
  if (!m) return 0;
  auto again = ph::parse_magnet(ph::to_magnet_uri(*m));
  if (!again) __builtin_trap();
  return 0;
}
