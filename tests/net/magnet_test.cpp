// Magnet links: hex and base32 info-hashes, percent decoding, tr/ws/x.pe/so, clear errors, round trip.
#include "net/magnet.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace ph;

namespace {
const std::string kHex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
const std::string kBase32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";  // the same 20 bytes

std::string error_of(std::string_view uri) {
  auto m = parse_magnet(uri);
  return m.ok() ? std::string("(parsed)") : m.error().message;
}
}  // namespace

TEST_CASE("magnet parses every field") {
  auto m = parse_magnet("magnet:?xt=urn:btih:" + kHex +
                        "&dn=Big+Buck%20Bunny.mp4&tr=udp%3A%2F%2Ftracker.example%3A80&tr=http://t2/announce"
                        "&tr=http://t2/announce&ws=http%3A%2F%2Fws.example%2F&x.pe=127.0.0.1:6881&x.pe=[::1]:51413"
                        "&x.pe=host.example:1&so=0,2,4-6&xl=123");
  REQUIRE(m.ok());
  CHECK(m->info_hash.hex() == kHex);
  CHECK(m->display_name == "Big Buck Bunny.mp4");
  CHECK(m->trackers == std::vector<std::string>{"udp://tracker.example:80", "http://t2/announce"});
  CHECK(m->web_seeds == std::vector<std::string>{"http://ws.example/"});
  REQUIRE(m->peers.size() == 2);  // the host-name peer cannot be held in a PeerAddress and is skipped
  CHECK(m->peers[0].to_string() == "127.0.0.1:6881");
  CHECK(m->peers[1].to_string() == "[::1]:51413");
  using R = std::pair<std::uint32_t, std::uint32_t>;
  CHECK(m->select_only == std::vector<R>{{0, 0}, {2, 2}, {4, 6}});
}

TEST_CASE("magnet accepts base32 and upper-case hex, numbered keys, odd casing") {
  auto b = parse_magnet("magnet:?xt=urn:btih:" + kBase32);
  REQUIRE(b.ok());
  CHECK(b->info_hash.hex() == kHex);
  auto lower32 = parse_magnet("MAGNET:?XT=urn:BTIH:" + std::string("yex6dqdlxisuvhoj6um3gnnkpqjwpkek"));
  CHECK(lower32.ok() == false);  // keys are case-sensitive ("XT" is not "xt"), so no xt is found
  auto mixed = parse_magnet("MAGNET:?xt=URN:BTIH:yex6dqdlxisuvhoj6um3gnnkpqjwpkek&tr.1=a&tr.2=b");
  REQUIRE(mixed.ok());
  CHECK(mixed->info_hash.hex() == kHex);
  CHECK(mixed->trackers == std::vector<std::string>{"a", "b"});
  std::string upper = kHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(parse_magnet("magnet:?xt=urn:btih:" + upper)->info_hash.hex() == kHex);
}

TEST_CASE("magnet hybrid link with btih and btmh uses the v1 hash") {
  auto m = parse_magnet("magnet:?xt=urn:btih:" + kHex + "&xt=urn:btmh:1220" + std::string(64, 'a'));
  REQUIRE(m.ok());
  CHECK(m->info_hash.hex() == kHex);
}

TEST_CASE("magnet errors are clear") {
  CHECK(error_of("http://example.com/").find("not a magnet link") != std::string::npos);
  CHECK(error_of("magnet:?dn=x").find("missing xt=urn:btih:") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btmh:1220" + std::string(64, 'a')).find("not supported yet (BEP 52)") !=
        std::string::npos);
  CHECK(error_of("magnet:?xt=urn:sha1:abc").find("not a BitTorrent info-hash") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:abc").find("40 hex or 32 base32") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + std::string(40, 'g')).find("not all hex") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + std::string(32, '1')).find("base32") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&dn=%4").find("truncated percent escape") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&tr=%zz").find("bad percent escape") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&so=3-1").find("ends before it starts") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&so=a").find("not a file index") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&so=99999999999").find("not a file index") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&so=").find("empty") != std::string::npos);
  CHECK(error_of("magnet:?xt=urn:btih:" + kHex + "&xt=urn:btih:" + std::string(40, '0')).find("two different") !=
        std::string::npos);
  std::string many = "magnet:?xt=urn:btih:" + kHex;
  for (int i = 0; i < 2000; ++i) many += "&tr=http://t" + std::to_string(i);
  CHECK(error_of(many).find("more than") != std::string::npos);
  MagnetLimits tiny;
  tiny.max_length = 10;
  CHECK_FALSE(parse_magnet("magnet:?xt=urn:btih:" + kHex, tiny).ok());
}

TEST_CASE("magnet round trips through to_magnet_uri") {
  Magnet m;
  m.info_hash = *Id20::from_hex(kHex);
  m.display_name = "a b&c=d/é";
  m.trackers = {"udp://t:1/announce?x=1&y=2", "http://u/"};
  m.web_seeds = {"http://w/a b"};
  m.peers = {*PeerAddress::parse("10.0.0.1:5"), *PeerAddress::parse("[2001:db8::1]:6")};
  m.select_only = {{0, 0}, {3, 9}};
  const std::string uri = to_magnet_uri(m);
  CHECK(uri.rfind("magnet:?xt=urn:btih:" + kHex, 0) == 0);
  auto back = parse_magnet(uri);
  REQUIRE(back.ok());
  CHECK(*back == m);
}

TEST_CASE("percent coding helpers") {
  CHECK(percent_decode("a%20b%2F").value() == "a b/");
  CHECK(percent_decode("a+b").value() == "a+b");
  CHECK(percent_decode("a+b", true).value() == "a b");
  CHECK_FALSE(percent_decode("%").ok());
  CHECK_FALSE(percent_decode("%a").ok());
  CHECK(percent_encode("a b/~") == "a%20b%2F~");
}
