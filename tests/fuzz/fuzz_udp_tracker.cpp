// libFuzzer target: UDP tracker packets (BEP 15) in both directions: replies as a client decodes them (IPv4 and IPv6
// peers, scrape replies checked against the hashes asked) and requests as a test tracker decodes them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/udp_tracker.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ph::tracker::udp::peek_header(in);
  (void)ph::tracker::udp::decode_reply(in, false);
  (void)ph::tracker::udp::decode_reply(in, true);
  std::array<ph::InfoHash, 3> asked{};
  (void)ph::tracker::udp::decode_reply(in, false, asked);
  (void)ph::tracker::udp::decode_request(in);
  return 0;
}
