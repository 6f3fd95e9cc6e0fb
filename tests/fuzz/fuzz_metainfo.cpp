// libFuzzer target: .torrent parsing (parse_metainfo) and BEP 9 info dicts (parse_info_dict). A parsed torrent is
// re-encoded and parsed again: the result must be accepted, which catches encoder/decoder disagreements.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/metainfo.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto m = ph::parse_metainfo(in)) {
    for (std::uint32_t p = 0; p < m->piece_count(); ++p) (void)m->piece_size(p);
    const auto again = ph::encode_torrent_file(*m);
    if (!ph::parse_metainfo(again)) __builtin_trap();
  }
  (void)ph::parse_info_dict(in);
  return 0;
}
