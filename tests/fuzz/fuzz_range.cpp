// libFuzzer target: the Range and If-Range header evaluation. The first 8 bytes are the representation length; a
// partial answer must lie inside it, which is what keeps a stream read in bounds.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "http/range.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t length = 0;
  std::memcpy(&length, data, 8);
  if (data[0] & 1) length &= 0xffff;  // small files half the time, where edge cases live
  const std::string_view header(reinterpret_cast<const char*>(data) + 8, size - 8);
  const auto d = ph::http::evaluate_range(header, length);
  if (d.outcome == ph::http::RangeOutcome::partial) {
    if (d.range.first > d.range.last || d.range.last >= length) __builtin_trap();
    (void)ph::http::content_range(d.range, length);
  }
  (void)ph::http::if_range_matches(header, "\"abc\"");
  return 0;
}
