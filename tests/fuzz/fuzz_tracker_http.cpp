// libFuzzer target: HTTP tracker response bodies (announce and scrape, BEP 3/23/7/48) and tracker URLs.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "net/tracker_http.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)ph::tracker::parse_announce_response(in);
  (void)ph::tracker::parse_scrape_response(in);
  std::vector<ph::PeerAddress> peers;
  (void)ph::tracker::parse_compact_peers(in, size % 2 == 1, peers);
  if (auto url = ph::tracker::parse_url(in)) (void)url->host_port();
  (void)ph::tracker::scrape_url_from_announce(in);
  return 0;
}
