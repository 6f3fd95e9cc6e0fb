// libFuzzer target: the .env parser, the size/bool parsers and apply_setting with whatever pairs the file yields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ph::parse_size(in);
  (void)ph::parse_bool(in);
  auto pairs = ph::parse_env_file(in);
  if (!pairs) return 0;
  ph::Config config;
  for (const auto& [k, v] : *pairs) (void)ph::apply_setting(config, k, v);
  (void)ph::validate(config);
  (void)config.describe();
  return 0;
}
