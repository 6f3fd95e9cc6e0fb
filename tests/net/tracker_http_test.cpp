// HTTP tracker codec: URL parsing and building, percent-encoding, announce and scrape responses as byte vectors.
#include "net/tracker_http.hpp"

#include <catch2/catch.hpp>

using namespace ph;
using namespace ph::tracker;

namespace {

InfoHash hash_of(std::string_view twenty) { return InfoHash::from_bytes(twenty); }

std::string bstr(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }

}  // namespace

TEST_CASE("tracker percent-encoding keeps only unreserved characters") {
  CHECK(percent_encode("aZ09-._~") == "aZ09-._~");
  CHECK(percent_encode(std::string("\x00\xff /?&=+%", 9)) == "%00%FF%20%2F%3F%26%3D%2B%25");
  // The BEP 3 example info-hash bytes.
  auto h = InfoHash::from_hex("123456789abcdef123456789abcdef123456789a").value();
  CHECK(percent_encode(h.view()) == "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A");
}

TEST_CASE("tracker url parsing") {
  auto u = parse_url("http://tracker.example.org/announce?passkey=abc");
  REQUIRE(u.ok());
  CHECK(u->scheme == "http");
  CHECK(u->host == "tracker.example.org");
  CHECK(u->port == 80);
  CHECK(u->target == "/announce?passkey=abc");

  auto s = parse_url("HTTPS://t.example:8443");
  REQUIRE(s.ok());
  CHECK(s->scheme == "https");
  CHECK(s->port == 8443);
  CHECK(s->target == "/");

  auto v6 = parse_url("udp://[::1]:6969/announce");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->host_is_v6_literal);
  CHECK(v6->port == 6969);
  CHECK(v6->host_port() == "[::1]:6969");

  CHECK_FALSE(parse_url("udp://tracker.example").ok());  // udp needs a port
  CHECK_FALSE(parse_url("ftp://x/announce").ok());
  CHECK_FALSE(parse_url("http://:80/announce").ok());
  CHECK_FALSE(parse_url("http://h:99999/").ok());
  CHECK_FALSE(parse_url("http://[::1/").ok());
  CHECK_FALSE(parse_url("no scheme").ok());
}

TEST_CASE("tracker announce url carries every BEP 3 parameter") {
  AnnounceRequest r;
  r.info_hash = hash_of("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14");
  r.peer_id = hash_of("-PH0001-abcdefghijkl");
  r.port = 6881;
  r.uploaded = 1;
  r.downloaded = 2;
  r.left = 3;
  r.event = Event::started;
  r.numwant = 80;
  r.key = 0xdeadbeef;
  r.tracker_id = "id 1";
  CHECK(build_announce_url("http://t/announce", r) ==
        "http://t/announce?info_hash=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14"
        "&peer_id=-PH0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1&event=started"
        "&numwant=80&key=deadbeef&trackerid=id%201");
  r.event = Event::none;
  r.tracker_id.clear();
  auto with_query = build_announce_url("http://t/announce.php?passkey=x", r);
  CHECK(with_query.rfind("http://t/announce.php?passkey=x&info_hash=", 0) == 0);
  CHECK(with_query.find("event=") == std::string::npos);
}

TEST_CASE("tracker scrape url follows the announce convention") {
  CHECK(scrape_url_from_announce("http://t/announce").value() == "http://t/scrape");
  CHECK(scrape_url_from_announce("http://t/x/announce.php?k=1").value() == "http://t/x/scrape.php?k=1");
  CHECK(scrape_url_from_announce("http://t/a/announce").value() == "http://t/a/scrape");
  CHECK_FALSE(scrape_url_from_announce("http://t/a").ok());
  CHECK_FALSE(scrape_url_from_announce("http://t/x%064announce").ok());
  CHECK_FALSE(scrape_url_from_announce("http://t").ok());
  InfoHash a = hash_of("aaaaaaaaaaaaaaaaaaaa");
  InfoHash b = hash_of("bbbbbbbbbbbbbbbbbbbb");
  std::vector<InfoHash> both{a, b};
  CHECK(build_scrape_url("http://t/announce", both).value() ==
        "http://t/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=bbbbbbbbbbbbbbbbbbbb");
}

TEST_CASE("tracker announce response: compact peers (BEP 23)") {
  std::string peers("\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50", 12);
  std::string body = "d8:completei5e10:incompletei7e8:intervali1800e12:min intervali900e5:peers" + bstr(peers) +
                     "10:tracker id3:xyz15:warning message4:slowe";
  auto r = parse_announce_response(body);
  REQUIRE(r.ok());
  CHECK_FALSE(r->failure_reason);
  CHECK(r->interval == 1800);
  CHECK(r->min_interval == 900);
  CHECK(r->tracker_id == "xyz");
  CHECK(r->warning_message == "slow");
  CHECK(r->complete == 5);
  CHECK(r->incomplete == 7);
  REQUIRE(r->peers.size() == 2);
  CHECK(r->peers[0].to_string() == "127.0.0.1:6881");
  CHECK(r->peers[1].to_string() == "10.0.0.2:80");
}

TEST_CASE("tracker announce response: dictionary peers and peers6 (BEP 7)") {
  std::string peers6(18, '\0');
  peers6[15] = 1;  // ::1
  peers6[16] = 0x1a;
  peers6[17] = 0xe2;
  std::string body =
      "d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eed2:ip3:::14:porti7001eed2:ip"
      "11:example.org4:porti1eed2:ip8:10.0.0.14:porti0eee6:peers6" +
      bstr(peers6) + "e";
  auto r = parse_announce_response(body);
  REQUIRE(r.ok());
  REQUIRE(r->peers.size() == 3);  // the DNS name and the port-0 entry are skipped
  CHECK(r->peers[0].to_string() == "127.0.0.1:7000");
  CHECK(r->peers[1].to_string() == "[::1]:7001");
  CHECK(r->peers[2].to_string() == "[::1]:6882");
}

TEST_CASE("tracker announce response: failure reason and bad input") {
  auto f = parse_announce_response("d14:failure reason22:unregistered torrent!!e");
  REQUIRE(f.ok());
  CHECK(f->failure_reason == "unregistered torrent!!");

  // Unsorted keys are tolerated (some trackers emit them).
  auto unsorted = parse_announce_response("d8:intervali5e5:peers0:8:completei1ee");
  REQUIRE(unsorted.ok());
  CHECK(unsorted->complete == 1);

  CHECK_FALSE(parse_announce_response("").ok());
  CHECK_FALSE(parse_announce_response("<html>502 Bad Gateway</html>").ok());
  CHECK_FALSE(parse_announce_response("d8:intervali1800e5:peers5:abcdee").ok());  // not a multiple of 6
  CHECK_FALSE(parse_announce_response("d5:peers0:e").ok());                      // no interval
  CHECK_FALSE(parse_announce_response("d8:intervali60ee").ok());                 // no peers at all
  CHECK_FALSE(parse_announce_response("d8:intervali-5e5:peers0:e").ok());
  CHECK_FALSE(parse_announce_response("li1ee").ok());
  CHECK_FALSE(parse_announce_response("d8:intervali60e5:peersi3ee").ok());
  auto truncated = parse_announce_response("d8:intervali1800e5:peers12:abc");
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.find("malformed") != std::string::npos);

  // Cut at every byte: never crashes, only the full body succeeds.
  std::string good = std::string("d8:intervali1800e5:peers6:") + std::string("\x7f\x00\x00\x01\x1a\xe1", 6) + "e";
  for (std::size_t cut = 0; cut < good.size(); ++cut) CHECK_FALSE(parse_announce_response(good.substr(0, cut)).ok());
  CHECK(parse_announce_response(good).ok());
}

TEST_CASE("tracker announce response: peer count is bounded") {
  std::string peers;
  for (int i = 0; i < 100; ++i) peers += std::string("\x01\x02\x03\x04\x00\x01", 6);
  ResponseLimits limits;
  limits.max_peers = 10;
  auto r = parse_announce_response("d8:intervali1e5:peers" + bstr(peers) + "e", limits);
  REQUIRE(r.ok());
  CHECK(r->peers.size() == 10);
}

TEST_CASE("tracker scrape response") {
  std::string body = "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei3e10:downloadedi10e10:incompletei4ee"
                     "3:bad" "d8:completei1eee5:flagsd20:min_request_intervali60eee";
  auto r = parse_scrape_response(body);
  REQUIRE(r.ok());
  REQUIRE(r->files.size() == 1);  // the 3-byte key is not an info-hash
  CHECK(r->files[0].info_hash == hash_of("aaaaaaaaaaaaaaaaaaaa"));
  CHECK(r->files[0].complete == 3);
  CHECK(r->files[0].downloaded == 10);
  CHECK(r->files[0].incomplete == 4);

  auto f = parse_scrape_response("d14:failure reason4:nopee");
  REQUIRE(f.ok());
  CHECK(f->failure_reason == "nope");
  CHECK_FALSE(parse_scrape_response("d5:filesi1ee").ok());
  CHECK_FALSE(parse_scrape_response("d5:files").ok());
}

TEST_CASE("tracker events round trip by name") {
  for (auto e : {Event::none, Event::started, Event::completed, Event::stopped}) {
    CHECK(parse_event(event_name(e)) == e);
  }
  CHECK(parse_event("none") == Event::none);
  CHECK_FALSE(parse_event("paused"));
}
