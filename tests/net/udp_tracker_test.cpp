// UDP tracker (BEP 15): byte vectors for every packet type, and the sans-I/O machine driven with a fake clock:
// connection id reuse and expiry, the 15 * 2^n retransmission schedule, transaction-id checks, bad packets.
#include "net/udp_tracker.hpp"

#include <catch2/catch.hpp>

using namespace ph;
using namespace ph::tracker;
using namespace ph::tracker::udp;
using namespace std::chrono_literals;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s += static_cast<char>(x);
  return s;
}

AnnounceRequest sample_request() {
  AnnounceRequest r;
  r.info_hash = InfoHash::from_bytes("IIIIIIIIIIIIIIIIIIII");
  r.peer_id = PeerId::from_bytes("PPPPPPPPPPPPPPPPPPPP");
  r.downloaded = 0x0102;
  r.left = 0x0304;
  r.uploaded = 0x0506;
  r.event = Event::started;
  r.key = 0xa1b2c3d4;
  r.numwant = -1;
  r.port = 6881;
  return r;
}

// Plays the tracker against a Machine: answers the last datagram it sent.
std::uint32_t tid_of(const std::string& request) { return decode_request(request).value().transaction_id; }

}  // namespace

TEST_CASE("udp tracker connect request and reply bytes") {
  CHECK(encode_connect_request(0x11223344) ==
        bytes({0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44}));
  auto reply = bytes({0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(encode_connect_reply(0x11223344, 0x0102030405060708) == reply);
  auto r = decode_reply(reply, false);
  REQUIRE(r.ok());
  CHECK(r->action == Action::connect);
  CHECK(r->transaction_id == 0x11223344);
  CHECK(r->connection_id == 0x0102030405060708);
  CHECK_FALSE(decode_reply(reply.substr(0, 15), false).ok());
  auto req = decode_request(encode_connect_request(7));
  REQUIRE(req.ok());
  CHECK(req->action == Action::connect);
  CHECK(req->transaction_id == 7);
}

TEST_CASE("udp tracker announce request bytes and round trip") {
  auto out = encode_announce_request(0x0102030405060708, 0x55667788, sample_request());
  REQUIRE(out.size() == 98);
  std::string expected = bytes({1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0x55, 0x66, 0x77, 0x88});
  expected += "IIIIIIIIIIIIIIIIIIII";
  expected += "PPPPPPPPPPPPPPPPPPPP";
  expected += bytes({0, 0, 0, 0, 0, 0, 1, 2});                  // downloaded
  expected += bytes({0, 0, 0, 0, 0, 0, 3, 4});                  // left
  expected += bytes({0, 0, 0, 0, 0, 0, 5, 6});                  // uploaded
  expected += bytes({0, 0, 0, 2});                              // event: started
  expected += bytes({0, 0, 0, 0});                              // ip
  expected += bytes({0xa1, 0xb2, 0xc3, 0xd4});                  // key
  expected += bytes({0xff, 0xff, 0xff, 0xff});                  // num_want -1
  expected += bytes({0x1a, 0xe1});                              // port 6881
  CHECK(out == expected);
  auto back = decode_request(out);
  REQUIRE(back.ok());
  CHECK(back->action == Action::announce);
  CHECK(back->connection_id == 0x0102030405060708);
  CHECK(back->announce.info_hash == sample_request().info_hash);
  CHECK(back->announce.left == 0x0304);
  CHECK(back->announce.event == Event::started);
  CHECK(back->announce.numwant == -1);
  CHECK(back->announce.port == 6881);
  CHECK_FALSE(decode_request(out.substr(0, 97)).ok());
}

TEST_CASE("udp tracker announce reply: IPv4 and IPv6 peers") {
  auto v4 = bytes({0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0x07, 0x08, 0, 0, 0, 3, 0, 0, 0, 4, 127, 0, 0, 1, 0x1a, 0xe1});
  std::vector<PeerAddress> peers{PeerAddress::parse("127.0.0.1:6881").value()};
  CHECK(encode_announce_reply(9, 1800, 3, 4, peers) == v4);
  auto r = decode_reply(v4, false);
  REQUIRE(r.ok());
  CHECK(r->action == Action::announce);
  CHECK(r->announce.interval == 1800);
  CHECK(r->announce.incomplete == 3);
  CHECK(r->announce.complete == 4);
  REQUIRE(r->announce.peers.size() == 1);
  CHECK(r->announce.peers[0].to_string() == "127.0.0.1:6881");
  CHECK_FALSE(decode_reply(v4 + "x", false).ok());  // a partial peer entry

  std::vector<PeerAddress> peers6{PeerAddress::parse("[::1]:7000").value()};
  auto v6 = encode_announce_reply(10, 60, 0, 1, peers6);
  CHECK(v6.size() == 20 + 18);
  auto r6 = decode_reply(v6, true);
  REQUIRE(r6.ok());
  REQUIRE(r6->announce.peers.size() == 1);
  CHECK(r6->announce.peers[0].to_string() == "[::1]:7000");

  // opentracker's 8-byte answer for an info-hash it does not track.
  auto short_reply = decode_reply(bytes({0, 0, 0, 1, 0, 0, 0, 9}), false);
  REQUIRE_FALSE(short_reply.ok());
  CHECK(short_reply.error().message.find("truncated announce reply") != std::string::npos);
}

TEST_CASE("udp tracker scrape request and reply bytes") {
  std::vector<InfoHash> hashes{InfoHash::from_bytes("AAAAAAAAAAAAAAAAAAAA"), InfoHash::from_bytes("BBBBBBBBBBBBBBBBBBBB")};
  auto req = encode_scrape_request(1, 2, hashes);
  CHECK(req == bytes({0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2}) + "AAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBB");
  auto back = decode_request(req);
  REQUIRE(back.ok());
  CHECK(back->hashes == hashes);

  std::vector<ScrapeEntry> entries(2);
  entries[0].complete = 1;
  entries[0].downloaded = 2;
  entries[0].incomplete = 3;
  entries[1].complete = 4;
  auto reply = encode_scrape_reply(2, entries);
  CHECK(reply == bytes({0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}));
  auto r = decode_reply(reply, false, hashes);
  REQUIRE(r.ok());
  REQUIRE(r->scrape.size() == 2);
  CHECK(r->scrape[0].info_hash == hashes[0]);
  CHECK(r->scrape[0].downloaded == 2);
  CHECK(r->scrape[0].incomplete == 3);
  CHECK(r->scrape[1].complete == 4);
  CHECK_FALSE(decode_reply(reply, false, std::span(hashes).first(1)).ok());  // more entries than asked
  CHECK_FALSE(decode_reply(reply.substr(0, 30), false, hashes).ok());
}

TEST_CASE("udp tracker error reply drops the trailing NUL") {
  auto err = encode_error_reply(5, std::string("Connection ID missmatch.\0", 25));
  auto r = decode_reply(err, false);
  REQUIRE(r.ok());
  CHECK(r->action == Action::error);
  CHECK(r->transaction_id == 5);
  CHECK(r->error == "Connection ID missmatch.");
  CHECK_FALSE(decode_reply(bytes({0, 0, 0, 9, 0, 0, 0, 1}), false).ok());  // unknown action
  CHECK_FALSE(decode_reply("short", false).ok());
}

TEST_CASE("udp tracker machine: connect, announce, reuse the connection id for 60 s") {
  MachineConfig cfg;
  cfg.seed = 42;
  Machine m(cfg);
  TimePoint t0{};
  auto id = m.announce(sample_request(), t0);
  auto out = m.take_datagrams();
  REQUIRE(out.size() == 1);
  auto connect = decode_request(out[0]).value();
  REQUIRE(connect.action == Action::connect);
  CHECK(m.next_timer() == t0 + 15s);

  m.on_datagram(encode_connect_reply(connect.transaction_id, 0xabcdef), t0 + 1s);
  out = m.take_datagrams();
  REQUIRE(out.size() == 1);
  auto ann = decode_request(out[0]).value();
  CHECK(ann.action == Action::announce);
  CHECK(ann.connection_id == 0xabcdef);
  CHECK(ann.announce.port == 6881);

  std::vector<PeerAddress> peers{PeerAddress::parse("10.1.2.3:5000").value()};
  m.on_datagram(encode_announce_reply(ann.transaction_id, 900, 1, 2, peers), t0 + 2s);
  auto done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].id == id);
  REQUIRE(done[0].announce.ok());
  CHECK(done[0].announce->interval == 900);
  CHECK(done[0].announce->peers == peers);
  CHECK_FALSE(m.next_timer());

  // Within 60 s of the connect reply: no new connect.
  m.scrape({sample_request().info_hash}, t0 + 50s);
  out = m.take_datagrams();
  REQUIRE(out.size() == 1);
  auto sc = decode_request(out[0]).value();
  CHECK(sc.action == Action::scrape);
  CHECK(sc.connection_id == 0xabcdef);
  std::vector<ScrapeEntry> entries(1);
  entries[0].complete = 7;
  m.on_datagram(encode_scrape_reply(sc.transaction_id, entries), t0 + 51s);
  done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].is_scrape);
  REQUIRE(done[0].scrape.ok());
  CHECK(done[0].scrape->files.at(0).complete == 7);

  // 60 s after the connect reply the id has expired: connect again.
  m.announce(sample_request(), t0 + 61s);
  out = m.take_datagrams();
  REQUIRE(out.size() == 1);
  CHECK(decode_request(out[0]).value().action == Action::connect);
  CHECK(m.stats().connects == 2);
}

TEST_CASE("udp tracker machine: retransmits on 15 * 2^n with a configurable base, then fails") {
  MachineConfig cfg;
  cfg.retransmit_base = 10ms;
  cfg.max_retransmits = 3;
  cfg.seed = 1;
  Machine m(cfg);
  TimePoint t{};
  m.announce(sample_request(), t);
  auto first = m.take_datagrams();
  REQUIRE(first.size() == 1);
  const auto tid = tid_of(first[0]);
  std::vector<std::chrono::milliseconds> gaps;
  TimePoint last = t;
  for (int i = 0; i < 10 && m.next_timer(); ++i) {
    TimePoint when = *m.next_timer();
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(when - last));
    last = when;
    m.on_timer(when);
    for (auto& d : m.take_datagrams()) CHECK(tid_of(d) == tid);  // same transaction id on every retransmit
  }
  CHECK(gaps == std::vector<std::chrono::milliseconds>{10ms, 20ms, 40ms, 80ms});
  auto done = m.take_completions();
  REQUIRE(done.size() == 1);
  REQUIRE_FALSE(done[0].announce.ok());
  CHECK(done[0].announce.error().message == "udp tracker did not answer connect (4 attempts, timed out)");
  CHECK(m.stats().retransmits == 3);

  // Default schedule: 15 s, 30 s, 60 s ...
  Machine spec;
  spec.announce(sample_request(), t);
  CHECK(spec.next_timer() == t + 15s);
  spec.on_timer(t + 15s);
  CHECK(spec.next_timer() == t + 15s + 30s);
}

TEST_CASE("udp tracker machine: wrong transaction ids are ignored, the request still times out") {
  MachineConfig cfg;
  cfg.retransmit_base = 10ms;
  cfg.max_retransmits = 1;
  Machine m(cfg);
  TimePoint t{};
  m.announce(sample_request(), t);
  auto c = tid_of(m.take_datagrams().at(0));
  m.on_datagram(encode_connect_reply(c + 1, 99), t + 1ms);
  CHECK(m.stats().ignored_datagrams == 1);
  CHECK(m.take_datagrams().empty());
  m.on_datagram(encode_connect_reply(c, 99), t + 2ms);
  auto a = tid_of(m.take_datagrams().at(0));
  m.on_datagram(encode_announce_reply(a ^ 0x80000000u, 1, 0, 0, {}), t + 3ms);
  m.on_datagram("abc", t + 3ms);
  CHECK(m.stats().ignored_datagrams == 3);
  CHECK(m.take_completions().empty());
  m.on_timer(t + 12ms);
  m.on_timer(t + 40ms);
  auto done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].announce.error().message.find("timed out") != std::string::npos);
}

TEST_CASE("udp tracker machine: truncated, oversized and error replies fail the request at once") {
  MachineConfig cfg;
  cfg.max_datagram = 100;
  Machine m(cfg);
  TimePoint t{};
  auto connect_and_announce = [&] {
    m.announce(sample_request(), t);
    auto out = m.take_datagrams();
    if (!out.empty() && decode_request(out[0]).value().action == Action::connect) {
      m.on_datagram(encode_connect_reply(tid_of(out[0]), 5), t);
      out = m.take_datagrams();
    }
    return tid_of(out.at(0));
  };
  auto tid = connect_and_announce();
  m.on_datagram(encode_announce_reply(tid, 1, 0, 0, {}).substr(0, 12), t);
  auto done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].announce.error().message.find("truncated") != std::string::npos);

  tid = connect_and_announce();
  std::vector<PeerAddress> many(30, PeerAddress::parse("1.2.3.4:5").value());
  m.on_datagram(encode_announce_reply(tid, 1, 0, 0, many), t);  // 200 bytes > 100
  done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].announce.error().message.find("oversized") != std::string::npos);

  tid = connect_and_announce();
  m.on_datagram(encode_error_reply(tid, "Connection ID missmatch.\0"), t);
  done = m.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].announce.error().message == "udp tracker error: Connection ID missmatch.");
  // The error invalidated the connection id: the next announce connects first.
  m.announce(sample_request(), t);
  CHECK(decode_request(m.take_datagrams().at(0)).value().action == Action::connect);

  // A connect answered with an error fails what waits for it.
  Machine m2;
  m2.announce(sample_request(), t);
  m2.on_datagram(encode_error_reply(tid_of(m2.take_datagrams().at(0)), "go away"), t);
  done = m2.take_completions();
  REQUIRE(done.size() == 1);
  CHECK(done[0].announce.error().message == "udp tracker error: go away");
}

TEST_CASE("udp tracker machine: cancel drops the request and its timers") {
  Machine m;
  TimePoint t{};
  auto id = m.announce(sample_request(), t);
  m.take_datagrams();
  m.cancel(id);
  CHECK_FALSE(m.next_timer());
  m.on_timer(t + 1h);
  CHECK(m.take_completions().empty());
  CHECK(m.take_datagrams().empty());
}

TEST_CASE("udp tracker machine: connection id expiring during retransmission triggers a reconnect") {
  MachineConfig cfg;
  cfg.retransmit_base = 40s;
  Machine m(cfg);
  TimePoint t{};
  m.announce(sample_request(), t);
  m.on_datagram(encode_connect_reply(tid_of(m.take_datagrams().at(0)), 77), t);
  auto a = decode_request(m.take_datagrams().at(0)).value();
  CHECK(a.action == Action::announce);
  m.on_timer(t + 40s);  // still within 60 s: plain retransmit
  auto re = decode_request(m.take_datagrams().at(0)).value();
  CHECK(re.action == Action::announce);
  CHECK(re.transaction_id == a.transaction_id);
  m.on_timer(t + 120s);  // expired: connect first
  auto c = decode_request(m.take_datagrams().at(0)).value();
  CHECK(c.action == Action::connect);
  m.on_datagram(encode_connect_reply(c.transaction_id, 78), t + 121s);
  auto again = decode_request(m.take_datagrams().at(0)).value();
  CHECK(again.action == Action::announce);
  CHECK(again.connection_id == 78);
}

TEST_CASE("udp tracker replies cut at every byte never crash and never decode as complete") {
  std::vector<PeerAddress> peers{PeerAddress::parse("127.0.0.1:6881").value(), PeerAddress::parse("10.0.0.1:1").value()};
  std::vector<InfoHash> asked{InfoHash::from_bytes("AAAAAAAAAAAAAAAAAAAA")};
  std::vector<ScrapeEntry> entries(1);
  const std::string replies[] = {encode_connect_reply(1, 2), encode_announce_reply(1, 2, 3, 4, peers),
                                 encode_scrape_reply(1, entries)};
  for (const auto& full : replies) {
    REQUIRE(decode_reply(full, false, asked).ok());
    for (std::size_t cut = 0; cut < full.size(); ++cut) {
      auto r = decode_reply(full.substr(0, cut), false, asked);
      // A cut announce reply may still be whole entries (fewer peers) or a scrape of fewer torrents; anything else
      // is an error.
      if (r.ok()) {
        CHECK(cut >= 20);
        CHECK((cut - 20) % 6 == 0);
      }
    }
  }
  std::string request = encode_announce_request(1, 2, sample_request());
  for (std::size_t cut = 0; cut < request.size(); ++cut) CHECK_FALSE(decode_request(request.substr(0, cut)).ok());
}
