// Announcer against trackers on loopback written in the test: BEP 12 tier order and promotion, hostile trackers that
// never answer, dribble, redirect forever or send garbage (marked failing, logged, retried with backoff, never
// blocking the other tiers), interval and min interval, and the started/completed/stopped events.
#include "engine/announcer.hpp"

#include <catch2/catch.hpp>

#include "net/tracker_fakes.hpp"

using namespace ph;
using namespace ph::engine;
using namespace ph::testing;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<PeerAddress> peers_a() { return {PeerAddress::parse("127.0.0.1:7001").value()}; }
std::vector<PeerAddress> peers_b() { return {PeerAddress::parse("127.0.0.2:7002").value()}; }

struct Harness {
  asio::io_context io;
  std::vector<std::string> logs;
  std::vector<std::pair<Clock::time_point, std::vector<PeerAddress>>> peer_batches;
  AnnounceStats stats{10, 20, 30};

  AnnouncerOptions options() {
    AnnouncerOptions o;
    o.shuffle = false;
    o.interval_floor = 0ms;
    o.backoff_base = 100ms;
    o.backoff_max = 2s;
    o.client.http.timeout = 3s;
    o.client.udp.retransmit_base = 50ms;
    o.client.udp.max_retransmits = 1;
    o.log = [this](const std::string& line) { logs.push_back(line); };
    return o;
  }

  std::unique_ptr<Announcer> make(std::vector<std::vector<std::string>> tiers, AnnouncerOptions o) {
    return std::make_unique<Announcer>(
        io, std::move(tiers), InfoHash::from_bytes("0123456789abcdefghij"), PeerId::from_bytes("-PH0001-000000000000"),
        6881, [this] { return stats; },
        [this](std::vector<PeerAddress> p) { peer_batches.emplace_back(Clock::now(), std::move(p)); }, std::move(o));
  }

  bool logged(const std::string& needle) const {
    for (const auto& l : logs) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

// Records each request's target and time; answers per a script keyed by the request count.
struct ScriptedHttp {
  std::vector<std::pair<Clock::time_point, std::string>> hits;
  std::unique_ptr<FakeHttpServer> server;

  ScriptedHttp(asio::io_context& io, std::function<void(Socket, int n)> script) {
    server = std::make_unique<FakeHttpServer>(io, [this, script](Socket s, const std::string& head) {
      auto sp1 = head.find(' ');
      hits.emplace_back(Clock::now(), head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1));
      script(s, static_cast<int>(hits.size()));
    });
  }
  std::string url() const { return server->url("/announce"); }
  std::string event(std::size_t i) const {
    const auto& t = hits.at(i).second;
    auto p = t.find("&event=");
    if (p == std::string::npos) return "none";
    return t.substr(p + 7, t.find('&', p + 7) - p - 7);
  }
};

}  // namespace

TEST_CASE("announcer: a tracker that never answers does not block the other tiers") {
  Harness h;
  FakeHttpServer silent(h.io, [](Socket, const std::string&) {});
  FakeUdpTracker good(h.io);
  good.peers = peers_a();
  auto t0 = Clock::now();
  auto a = h.make({{silent.url("/announce")}, {good.url()}}, h.options());
  a->start();
  REQUIRE(run_until(h.io, [&] { return !h.peer_batches.empty(); }, 5s));
  CHECK(h.peer_batches[0].first - t0 < 2500ms);  // before the silent tracker's 3 s timeout
  CHECK(h.peer_batches[0].second == peers_a());
  auto st = a->status();
  REQUIRE(st.size() == 2);
  CHECK(st[0].last_result == "announcing");
  CHECK(st[1].last_result == "ok: 1 peers");
  CHECK(st[1].seeders == 1);
  CHECK(st[1].leechers == 2);
  REQUIRE(st[1].next_announce);
  CHECK(*st[1].next_announce > Clock::now() + 1700s);  // the fake's interval is 1800 s

  // When the silent tracker's request times out it is marked failing, logged, and scheduled with backoff.
  REQUIRE(run_until(h.io, [&] { return h.logged("failed: timed out"); }, 6s));
  st = a->status();
  CHECK(st[0].failures == 1);
  CHECK(st[0].last_result == "error: timed out after 3000 ms");
  CHECK(h.logged("announce to " + silent.url("/announce") + " failed: timed out after 3000 ms (failure 1); retrying in 0.1 s"));
}

TEST_CASE("announcer: inside a tier a failing tracker is skipped and the one that answers moves to the front") {
  Harness h;
  ScriptedHttp garbage(h.io, [](Socket s, int) { FakeHttpServer::reply(s, http_ok("this is not bencode")); });
  int redirects = 0;
  std::unique_ptr<FakeHttpServer> looping;
  looping = std::make_unique<FakeHttpServer>(h.io, [&](Socket s, const std::string&) {
    ++redirects;
    FakeHttpServer::reply(s, "HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
  });
  ScriptedHttp good(h.io, [](Socket s, int) { FakeHttpServer::reply(s, http_ok(bencoded_peers_body(peers_b(), 600))); });
  auto a = h.make({{garbage.url(), looping->url("/announce"), good.url()}}, h.options());
  a->start();
  REQUIRE(run_until(h.io, [&] { return !h.peer_batches.empty(); }, 5s));
  CHECK(h.peer_batches[0].second == peers_b());
  CHECK(redirects == 4);
  auto st = a->status();
  REQUIRE(st.size() == 3);
  CHECK(st[0].url == good.url());  // promoted
  CHECK(st[0].position == 0);
  CHECK(st[0].last_result == "ok: 1 peers");
  CHECK(st[1].url == garbage.url());
  CHECK(st[1].failures == 1);
  CHECK(st[1].last_result.rfind("error: malformed announce response", 0) == 0);
  CHECK(st[2].last_result == "error: too many redirects (more than 3)");
  CHECK(h.logged("announce to " + garbage.url() + " failed: malformed announce response"));
  CHECK(h.logged("; trying " + looping->url("/announce") + " next"));
  CHECK(good.event(0) == "started");
}

TEST_CASE("announcer: a failing tier is retried with exponential backoff") {
  Harness h;
  FakeUdpTracker truncated(h.io);
  truncated.mode = FakeUdpTracker::Mode::truncated;
  ScriptedHttp dribbling(h.io, [&](Socket s, int) {
    FakeHttpServer::dribble(h.io, s, http_ok(bencoded_peers_body(peers_a(), 60)), 50ms);
  });
  FakeUdpTracker good(h.io);
  good.peers = peers_a();
  auto o = h.options();
  o.client.http.timeout = 300ms;
  auto a = h.make({{truncated.url()}, {dribbling.url()}, {good.url()}}, o);
  auto t0 = Clock::now();
  a->start();
  run_until(h.io, [] { return false; }, 1700ms);
  a.reset();
  // The good tier answered at once and only once (its interval is 30 min).
  REQUIRE(h.peer_batches.size() == 1);
  CHECK(h.peer_batches[0].first - t0 < 1500ms);
  // The truncating UDP tracker: announces at 0, +0.1, +0.2, +0.4, +0.8 s (each after a fresh failure).
  std::size_t announces = 0;
  for (const auto& r : truncated.received) announces += r.action == tracker::udp::Action::announce ? 1 : 0;
  CHECK(announces >= 3);
  CHECK(announces <= 6);
  // The dribbling HTTP tracker times out each time (300 ms), then waits 0.1, 0.2, 0.4 s.
  REQUIRE(dribbling.hits.size() >= 3);
  auto gap1 = dribbling.hits[1].first - dribbling.hits[0].first;
  auto gap2 = dribbling.hits[2].first - dribbling.hits[1].first;
  CHECK(gap1 >= 350ms);  // 300 ms timeout + 100 ms backoff, less the time the request took to arrive
  CHECK(gap2 >= 450ms);  // 300 ms + 200 ms
  CHECK(gap2 > gap1);
  CHECK(h.logged("failed: udp tracker: truncated announce reply"));
  CHECK(h.logged("retrying in 0.2 s"));
  CHECK(h.logged("retrying in 0.4 s"));
  CHECK(dribbling.event(1) == "started");  // `started` is repeated until a tracker acknowledges it
}

TEST_CASE("announcer: re-announces on interval, never sooner than min interval") {
  Harness h;
  ScriptedHttp t(h.io, [](Socket s, int) {
    FakeHttpServer::reply(s, http_ok(bencoded_peers_body(peers_a(), 1, 2)));  // interval 1 s, min interval 2 s
  });
  auto a = h.make({{t.url()}}, h.options());
  a->start();
  REQUIRE(run_until(h.io, [&] { return t.hits.size() == 1 && !h.peer_batches.empty(); }, 3s));
  a->announce_now();  // the engine wants peers, but min interval says wait
  run_until(h.io, [&] { return t.hits.size() >= 2; }, 3s);
  REQUIRE(t.hits.size() == 2);
  auto gap = t.hits[1].first - t.hits[0].first;
  CHECK(gap >= 1950ms);
  CHECK(gap < 3500ms);
  CHECK(t.event(0) == "started");
  CHECK(t.event(1) == "none");
  CHECK(t.hits[1].second.find("&uploaded=10&downloaded=20&left=30") != std::string::npos);
}

TEST_CASE("announcer: completed, then stopped on shutdown bounded by the deadline") {
  Harness h;
  ScriptedHttp good(h.io, [](Socket s, int) { FakeHttpServer::reply(s, http_ok(bencoded_peers_body(peers_a(), 1800))); });
  // Answers `started`, then never answers again.
  ScriptedHttp mute_later(h.io, [](Socket s, int n) {
    if (n == 1) FakeHttpServer::reply(s, http_ok(bencoded_peers_body(peers_b(), 1800)));
  });
  FakeUdpTracker udp(h.io);
  udp.peers = peers_a();
  auto a = h.make({{good.url()}, {mute_later.url()}, {udp.url()}}, h.options());
  a->start();
  REQUIRE(run_until(h.io, [&] { return h.peer_batches.size() == 3; }, 5s));

  h.stats.left = 0;
  a->completed();
  REQUIRE(run_until(h.io, [&] { return good.hits.size() == 2 && udp.received.size() >= 3; }, 3s));
  CHECK(good.event(1) == "completed");
  CHECK(good.hits[1].second.find("&left=0") != std::string::npos);
  CHECK(udp.received.back().announce.event == tracker::Event::completed);

  bool done = false;
  auto t0 = Clock::now();
  a->stop(500ms, [&] { done = true; });
  REQUIRE(run_until(h.io, [&] { return done; }, 3s));
  auto took = Clock::now() - t0;
  CHECK(took >= 450ms);  // waited for the mute tracker...
  CHECK(took < 2500ms);  // ...but not much longer than the deadline, on a loaded machine too
  CHECK(good.event(good.hits.size() - 1) == "stopped");
  CHECK(udp.received.back().announce.event == tracker::Event::stopped);
  CHECK(h.logged("1 tracker(s) did not answer `stopped` within 0.5 s"));
  CHECK_FALSE(a->running());
  auto st = a->status();
  CHECK(st[0].last_result == "stopped");
  CHECK(st[1].last_result == "error: no answer to stopped");

  // Nothing more is sent after stop.
  auto before = good.hits.size();
  run_until(h.io, [] { return false; }, 300ms);
  CHECK(good.hits.size() == before);
}

TEST_CASE("announcer: stop before any tracker answered finishes at once; magnet trackers are one tier each") {
  Harness h;
  FakeHttpServer silent(h.io, [](Socket, const std::string&) {});
  auto tiers = Announcer::tiers_from_list({silent.url("/a"), silent.url("/b")});
  REQUIRE(tiers.size() == 2);
  auto a = h.make(tiers, h.options());
  a->start();
  run_until(h.io, [] { return false; }, 100ms);
  CHECK(a->status().size() == 2);
  CHECK(silent.targets().size() == 2);  // both tiers announced in parallel
  bool done = false;
  a->stop(2s, [&] { done = true; });
  CHECK_FALSE(done);  // never inside stop()
  REQUIRE(run_until(h.io, [&] { return done; }, 1s));
}

TEST_CASE("announcer: shuffles each tier, duplicates dropped") {
  Harness h;
  std::vector<std::string> urls;
  for (int i = 0; i < 8; ++i) urls.push_back("udp://127.0.0.1:" + std::to_string(1000 + i) + "/announce");
  auto o = h.options();
  o.shuffle = true;
  o.seed = 7;
  auto with_dup = urls;
  with_dup.push_back(urls[0]);
  auto a = h.make({with_dup}, o);
  auto st = a->status();
  REQUIRE(st.size() == 8);
  std::vector<std::string> order;
  for (const auto& s : st) order.push_back(s.url);
  CHECK(order != urls);
  std::sort(order.begin(), order.end());
  CHECK(order == urls);
}
