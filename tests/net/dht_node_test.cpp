// The sans-I/O DHT node: a simulated network of sans-I/O nodes on a virtual clock in one process (bootstrap,
// announce, lookups converging, dead nodes), plus serving rules and hostile input (malformed KRPC, wrong types,
// oversized packets, bad tokens, query floods, bounded memory), and DhtService over real UDP sockets on loopback.
#include "net/dht_node.hpp"
#include "net/io/dht_service.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <set>

using namespace ph;
using namespace ph::dht;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 24h;

PeerAddress sim_addr(std::uint32_t n, std::uint16_t port = 6881) { return PeerAddress::v4(0x0a000000u + n, port); }

// Delivers every datagram in order with no latency; a virtual clock jumps to the next timer deadline when the
// network is idle. Nodes can be switched off (their packets vanish) to exercise timeouts.
struct SimNet {
  TimePoint now = t0;
  std::vector<std::unique_ptr<DhtNode>> nodes;
  std::vector<PeerAddress> addrs;
  std::set<std::size_t> dead;
  std::deque<std::pair<PeerAddress, Datagram>> queue;  // (from, datagram)
  std::uint64_t delivered = 0;

  std::size_t add(std::uint64_t seed) {
    NodeConfig c;
    c.seed = seed;
    nodes.push_back(std::make_unique<DhtNode>(c, now));
    addrs.push_back(sim_addr(static_cast<std::uint32_t>(nodes.size())));
    return nodes.size() - 1;
  }
  DhtNode& operator[](std::size_t i) { return *nodes[i]; }
  void collect(std::size_t i) {
    for (auto& d : nodes[i]->take_outgoing()) queue.emplace_back(addrs[i], std::move(d));
  }
  void collect_all() {
    for (std::size_t i = 0; i < nodes.size(); ++i) collect(i);
  }
  std::optional<std::size_t> index_of(const PeerAddress& a) const {
    auto it = std::find(addrs.begin(), addrs.end(), a);
    if (it == addrs.end()) return std::nullopt;
    return static_cast<std::size_t>(it - addrs.begin());
  }
  // Runs until `done` holds or `limit` of virtual time has passed. Returns whether `done` held.
  template <class Pred>
  bool run_until(Pred done, Duration limit) {
    const TimePoint end = now + limit;
    collect_all();
    while (!done()) {
      if (!queue.empty()) {
        auto [from, d] = std::move(queue.front());
        queue.pop_front();
        auto to = index_of(d.to);
        if (!to || dead.contains(*to) || (index_of(from) && dead.contains(*index_of(from)))) continue;
        ++delivered;
        nodes[*to]->receive(d.bytes, from, now);
        collect(*to);
        continue;
      }
      TimePoint next = end;
      for (auto& n : nodes) next = std::min(next, n->next_deadline());
      if (next >= end) {
        now = end;
        for (auto& n : nodes) n->tick(now);
        collect_all();
        return done();
      }
      now = std::max(now, next);
      for (auto& n : nodes) {
        if (n->next_deadline() <= now) n->tick(now);
      }
      collect_all();
    }
    return true;
  }
  void run_for(Duration d) {
    run_until([] { return false; }, d);
  }
  void bootstrap_all() {
    for (std::size_t i = 1; i < nodes.size(); ++i) {
      nodes[i]->bootstrap({addrs[0]}, now);
      collect(i);
    }
    run_for(60s);
  }
};

// One node under test, driven by hand-made datagrams from arbitrary addresses.
struct Bench {
  TimePoint now = t0;
  DhtNode node;
  explicit Bench(NodeConfig c = {}) : node(std::move(c), t0) {}

  std::vector<Datagram> send(std::string_view bytes, const PeerAddress& from) {
    node.receive(bytes, from, now);
    return node.take_outgoing();
  }
  std::optional<krpc::Message> ask(krpc::Query q, const PeerAddress& from, std::string tid = "tt") {
    auto out = send(krpc::encode(krpc::make_query(tid, std::move(q))), from);
    for (auto& d : out) {
      if (d.to != from) continue;
      auto m = krpc::decode(d.bytes);
      if (m && m->transaction_id == tid) return *m;
    }
    return std::nullopt;
  }
};

krpc::Query make_q(krpc::Method m, Id20 target = {}, std::uint8_t querier = 1) {
  krpc::Query q;
  q.method = m;
  q.id.bytes[0] = querier;
  q.id.bytes[19] = 0x55;
  q.target = target;
  return q;
}

Id20 hash_of(std::uint64_t n) {
  std::mt19937_64 rng(n * 7919 + 1);
  return random_id(rng);
}

}  // namespace

TEST_CASE("dht simulated network: 24 nodes bootstrap, announce, and find each other's peers") {
  SimNet net;
  for (int i = 0; i < 24; ++i) net.add(static_cast<std::uint64_t>(1000 + i));
  net.bootstrap_all();
  for (std::size_t i = 0; i < net.nodes.size(); ++i) {
    INFO("node " << i);
    CHECK(net[i].routing_table().size() >= 8);
  }

  const InfoHash hash = hash_of(42);
  std::optional<LookupResult> announced;
  net[5].announce(hash, 7000, {}, [&](const LookupResult& r) { announced = r; }, net.now);
  REQUIRE(net.run_until([&] { return announced.has_value(); }, 60s));
  CHECK(announced->announced_to == 8);

  // The peer is stored on the nodes closest to the info-hash.
  std::size_t storing = 0;
  for (std::size_t i = 0; i < net.nodes.size(); ++i) {
    auto peers = net[i].stored_peers(hash);
    if (!peers.empty()) {
      ++storing;
      CHECK(peers.front() == sim_addr(6, 7000));  // node 5's IP with the announced port
    }
  }
  CHECK(storing == 8);

  std::vector<PeerAddress> found;
  bool peers_before_done = false;
  std::optional<LookupResult> done;
  net[17].get_peers(
      hash, [&](const std::vector<PeerAddress>& p) { found.insert(found.end(), p.begin(), p.end()); },
      [&](const LookupResult& r) {
        peers_before_done = !found.empty();
        done = r;
      },
      net.now);
  REQUIRE(net.run_until([&] { return done.has_value(); }, 60s));
  REQUIRE(found.size() == 1);
  CHECK(found[0] == sim_addr(6, 7000));
  CHECK(peers_before_done);  // streamed as they arrived, not only at the end
  CHECK(done->peers == 1);
  CHECK(done->failed == 0);

  // Convergence: the lookup ends on exactly the 8 nodes closest to the target (brute force over the network).
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < net.nodes.size(); ++i) {
    if (i != 17) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return closer_to(hash, net[a].id(), net[b].id()); });
  std::set<Id20> expected, got;
  for (std::size_t i = 0; i < 8; ++i) expected.insert(net[order[i]].id());
  for (const auto& n : done->closest) got.insert(n.id);
  CHECK(got == expected);
}

TEST_CASE("dht simulated network: 100 nodes, every lookup ends on the exact 8 closest") {
  SimNet net;
  const std::size_t n = 100;
  for (std::size_t i = 0; i < n; ++i) net.add(7000 + i);
  net.bootstrap_all();
  std::size_t exact = 0, queried = 0;
  const std::size_t runs = 20;
  for (std::size_t r = 0; r < runs; ++r) {
    const Id20 target = hash_of(5000 + r);
    const std::size_t who = (r * 13) % n;
    std::optional<LookupResult> done;
    net[who].find_node(target, [&](const LookupResult& x) { done = x; }, net.now);
    REQUIRE(net.run_until([&] { return done.has_value(); }, 60s));
    queried += done->queried;
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i) {
      if (i != who) order.push_back(i);
    }
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return closer_to(target, net[a].id(), net[b].id()); });
    std::set<Id20> expected, got;
    for (std::size_t i = 0; i < 8; ++i) expected.insert(net[order[i]].id());
    for (const auto& c : done->closest) got.insert(c.id);
    exact += got == expected ? 1 : 0;
  }
  CHECK(exact == runs);
  const double avg_queried = static_cast<double>(queried) / runs;
  CHECK(avg_queried <= 16.0);  // a handful of hops beyond the 8 that must answer
}

TEST_CASE("dht simulated network: an active torrent is re-announced every 15 minutes until stopped") {
  SimNet net;
  for (int i = 0; i < 20; ++i) net.add(static_cast<std::uint64_t>(3000 + i));
  net.bootstrap_all();
  const InfoHash hash = hash_of(99);
  auto stored_anywhere = [&] {
    std::size_t n = 0;
    for (auto& node : net.nodes) n += node->stored_peers(hash).empty() ? 0 : 1;
    return n;
  };
  net[4].start_announcing(hash, 6000, net.now);
  net.collect(4);
  net.run_for(1min);
  CHECK(stored_anywhere() == 8);
  // Stored peers expire after 30 minutes; re-announcing keeps them alive for as long as the torrent is active.
  net.run_for(50min);
  CHECK(stored_anywhere() >= 8);
  net[4].stop_announcing(hash);
  net.run_for(35min);
  CHECK(stored_anywhere() == 0);
  // Routing tables were kept alive meanwhile (refresh of idle buckets, pings of questionable nodes).
  for (std::size_t i = 0; i < net.nodes.size(); ++i) {
    INFO("node " << i);
    CHECK(net[i].routing_table().count(NodeState::good, net.now) >= 8);
  }
}

TEST_CASE("dht simulated network: lookups converge with alpha=3 and survive dead nodes") {
  SimNet net;
  for (int i = 0; i < 30; ++i) net.add(static_cast<std::uint64_t>(2000 + i));
  net.bootstrap_all();

  // Kill a third of the network; lookups must still finish, on live nodes only, through per-query timeouts.
  for (std::size_t i = 20; i < 30; ++i) net.dead.insert(i);
  std::mt19937_64 rng(9);
  Id20 target = random_id(rng);
  std::optional<LookupResult> done;
  std::size_t max_in_flight = 0, in_flight = 0;
  net[3].set_hop_observer([&](const HopEvent& e) {
    if (e.kind == HopEvent::Kind::queried) max_in_flight = std::max(max_in_flight, ++in_flight);
    if (e.kind == HopEvent::Kind::responded || e.kind == HopEvent::Kind::failed) --in_flight;
  });
  const TimePoint start = net.now;
  net[3].find_node(target, [&](const LookupResult& r) { done = r; }, net.now);
  REQUIRE(net.run_until([&] { return done.has_value(); }, 120s));
  CHECK(max_in_flight <= 3);
  CHECK(done->closest.size() == 8);
  for (const auto& n : done->closest) {
    auto idx = net.index_of(n.address);
    REQUIRE(idx);
    CHECK(*idx < 20);
  }
  CHECK(net.now - start < 60s);  // bounded by per-query timeouts, not stuck
  // The dead nodes age out of routing tables: queried twice without answer, they turn bad and are not handed out.
  net.run_for(40min);
  for (std::size_t i = 0; i < 20; ++i) {
    for (const auto& e : net[i].routing_table().closest(target, 100, net.now)) {
      auto idx = net.index_of(e.address);
      REQUIRE(idx);
      INFO("node " << i << " still lists dead node " << *idx);
      CHECK(*idx < 20);
    }
  }
}

TEST_CASE("dht node serves ping, find_node, get_peers and announce_peer") {
  Bench b;
  PeerAddress alice = sim_addr(100, 5000);
  auto pong = b.ask(make_q(krpc::Method::ping), alice);
  REQUIRE(pong);
  REQUIRE(pong->is_response());
  CHECK(pong->response().id == b.node.id());
  CHECK(pong->your_ip == alice);

  // An empty table: find_node has no nodes to give.
  auto fn = b.ask(make_q(krpc::Method::find_node, hash_of(1)), alice);
  REQUIRE(fn);
  CHECK(fn->response().nodes.empty());

  InfoHash h = hash_of(7);
  auto gp = b.ask(make_q(krpc::Method::get_peers, h), alice);
  REQUIRE(gp);
  REQUIRE(gp->response().token);
  CHECK(gp->response().values.empty());

  auto ann = make_q(krpc::Method::announce_peer, h);
  ann.port = 6999;
  ann.token = *gp->response().token;
  auto ok = b.ask(ann, alice);
  REQUIRE(ok);
  CHECK(ok->is_response());
  REQUIRE(b.node.stored_peers(h).size() == 1);
  CHECK(b.node.stored_peers(h)[0] == sim_addr(100, 6999));

  // implied_port: the UDP source port is stored instead.
  auto implied = ann;
  implied.implied_port = true;
  implied.port = 1;
  REQUIRE(b.ask(implied, alice)->is_response());
  CHECK(b.node.stored_peers(h).size() == 2);
  auto peers = b.node.stored_peers(h);
  CHECK(std::find(peers.begin(), peers.end(), alice) != peers.end());

  PeerAddress bob = sim_addr(101, 5000);
  auto gp2 = b.ask(make_q(krpc::Method::get_peers, h, 2), bob);
  REQUIRE(gp2);
  CHECK(gp2->response().values.size() == 2);

  // Stored peers expire after 30 minutes.
  b.now += 31min;
  b.node.tick(b.now);
  CHECK(b.node.stored_peers(h).empty());
}

TEST_CASE("dht node refuses bad tokens: wrong, from another IP, or older than two rotations") {
  Bench b;
  PeerAddress alice = sim_addr(100, 5000);
  PeerAddress mallory = sim_addr(66, 5000);
  InfoHash h = hash_of(8);
  auto gp = b.ask(make_q(krpc::Method::get_peers, h), alice);
  REQUIRE(gp);
  std::string token = *gp->response().token;

  auto ann = make_q(krpc::Method::announce_peer, h);
  ann.port = 7000;
  ann.token = "forged!!";
  auto r = b.ask(ann, alice);
  REQUIRE(r);
  REQUIRE(r->is_error());
  CHECK(r->error().code == 203);

  ann.token = token;
  r = b.ask(ann, mallory);  // alice's token is bound to alice's IP
  REQUIRE(r);
  CHECK(r->is_error());
  CHECK(b.node.stored_peers(h).empty());

  auto other = make_q(krpc::Method::announce_peer, hash_of(9));  // bound to the info-hash as well
  other.port = 7000;
  other.token = token;
  CHECK(b.ask(other, alice)->is_error());

  // Still valid one rotation later (5-10 minutes), invalid after two.
  b.now += 6min;
  b.node.tick(b.now);
  CHECK(b.ask(ann, alice)->is_response());
  b.now += 6min;
  b.node.tick(b.now);
  CHECK(b.ask(ann, alice, "t2")->is_error());
  CHECK(b.node.stats(b.now).bad_tokens == 4);
}

TEST_CASE("dht node handles malformed KRPC, wrong types and oversized packets") {
  Bench b;
  PeerAddress eve = sim_addr(200, 1);
  // Garbage and non-queries: dropped without a reply.
  for (std::string_view junk : {"", "x", "d", "i1e", "le", "d1:t2:aa1:y1:re", "d1:t2:aa1:y1:ee", "d1:y1:qe"}) {
    CHECK(b.send(junk, eve).empty());
  }
  // Query-shaped with wrong types: a small 203 error.
  auto out = b.send("d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", eve);
  REQUIRE(out.size() == 1);
  auto e = krpc::decode(out[0].bytes);
  REQUIRE(e);
  REQUIRE(e->is_error());
  CHECK(e->error().code == 203);
  CHECK(e->transaction_id == "aa");
  // Unknown method: 204.
  out = b.send("d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:ab1:y1:qe", eve);
  REQUIRE(out.size() == 1);
  CHECK(krpc::decode(out[0].bytes)->error().code == 204);
  // Oversized: dropped before parsing, even if well-formed.
  std::string big = "d1:ad2:id20:abcdefghij01234567891:x" + std::to_string(8000) + ":" + std::string(8000, 'z') +
                    "e1:q4:ping1:t2:aa1:y1:qe";
  CHECK(b.send(big, eve).empty());
  // A response nobody asked for, and one from the wrong address, are ignored.
  CHECK(b.send("d1:rd2:id20:abcdefghij0123456789e1:t4:zzzz1:y1:re", eve).empty());
  // Random bytes: nothing crashes, nothing is answered except query-shaped input.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 3000; ++i) {
    std::string pkt(rng() % 300, '\0');
    for (auto& c : pkt) c = static_cast<char>(rng());
    if (i % 3 == 0 && pkt.size() > 10) pkt.replace(0, 10, "d1:ad2:id2");  // half-valid prefixes
    b.send(pkt, sim_addr(300 + static_cast<std::uint32_t>(i), 2));
  }
  auto s = b.node.stats(b.now);
  CHECK(s.malformed >= 3000);
  CHECK(s.routing_nodes == 0);
}

TEST_CASE("dht node rate-limits a query flood from one address without starving others") {
  NodeConfig c;
  c.rate_per_second = 20;
  c.rate_burst = 40;
  Bench b(c);
  PeerAddress flooder = sim_addr(50, 9999);
  std::size_t answered = 0;
  for (int i = 0; i < 5000; ++i) {
    for (auto& d : b.send(krpc::encode(krpc::make_query("f" + std::to_string(i), make_q(krpc::Method::ping))), flooder)) {
      if (d.to == flooder) ++answered;
    }
  }
  // The burst, plus at most the single ping the node sends to learn about the querier.
  CHECK(answered <= 41);
  CHECK(answered >= 40);
  CHECK(b.node.stats(b.now).rate_limited >= 4959);
  // Another address is unaffected.
  CHECK(b.ask(make_q(krpc::Method::ping, {}, 9), sim_addr(51, 1)));
  // The flooder recovers at the configured rate.
  b.now += 1s;
  std::size_t later = 0;
  for (int i = 0; i < 100; ++i) {
    if (b.ask(make_q(krpc::Method::ping), flooder, "g" + std::to_string(i))) ++later;
  }
  CHECK(later == 20);
}

TEST_CASE("dht node memory stays bounded under announce floods; replies stay small") {
  NodeConfig c;
  c.max_stored_hashes = 100;
  c.max_peers_per_hash = 60;
  c.max_rate_entries = 256;
  Bench b(c);
  // Many sources (each within its own rate limit) announce many hashes with valid tokens.
  for (std::uint32_t i = 0; i < 2000; ++i) {
    PeerAddress from = sim_addr(1000 + i, 4000);
    InfoHash h = hash_of(i % 300);
    auto gp = b.ask(make_q(krpc::Method::get_peers, h), from, "a");
    if (!gp || !gp->response().token) continue;
    auto ann = make_q(krpc::Method::announce_peer, h);
    ann.port = static_cast<std::uint16_t>(1 + i);
    ann.token = *gp->response().token;
    b.ask(ann, from, "b");
    b.now += 10ms;
  }
  auto s = b.node.stats(b.now);
  CHECK(s.stored_hashes <= 100);
  CHECK(s.stored_peers <= 100 * 60);
  CHECK(s.store_full > 0);
  CHECK(s.rate_entries <= 256);
  CHECK(s.pending_queries <= c.max_pending_queries);

  // A hash with many peers: the reply carries values but stays under max_reply_bytes.
  InfoHash busy = hash_of(1);
  REQUIRE(b.node.stored_peers(busy).size() >= 6);
  b.now += 3s;  // let the earlier sources' rate entries go idle
  for (std::uint32_t i = 0; i < 200; ++i) {
    b.now += 10ms;
    PeerAddress from = sim_addr(50000 + i, 4000);
    auto gp = b.ask(make_q(krpc::Method::get_peers, busy), from, "c");
    REQUIRE(gp);
    auto ann = make_q(krpc::Method::announce_peer, busy);
    ann.port = 80;
    ann.token = *gp->response().token;
    b.ask(ann, from, "d");
  }
  CHECK(b.node.stored_peers(busy).size() == 60);
  auto q = krpc::encode(krpc::make_query("zz", make_q(krpc::Method::get_peers, busy)));
  auto out = b.send(q, sim_addr(9, 9));
  std::size_t reply_bytes = 0;
  for (auto& d : out) {
    if (d.to == sim_addr(9, 9)) reply_bytes = d.bytes.size();
  }
  REQUIRE(reply_bytes > 0);
  CHECK(reply_bytes <= c.max_reply_bytes);
  CHECK(reply_bytes <= 20 * q.size());  // bounded amplification factor
}

TEST_CASE("dht node: lookups with nobody to ask finish at once; pings time out; PORT-learnt nodes are pinged") {
  Bench b;
  std::optional<LookupResult> done;
  b.node.get_peers(hash_of(3), {}, [&](const LookupResult& r) { done = r; }, b.now);
  REQUIRE(done);
  CHECK(done->queried == 0);

  std::optional<std::optional<Id20>> pinged;
  b.node.ping(sim_addr(77, 6881), b.now, [&](std::optional<Id20> id) { pinged = id; });
  auto out = b.node.take_outgoing();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == sim_addr(77, 6881));
  b.now += 5s;
  b.node.tick(b.now);
  REQUIRE(pinged);
  CHECK_FALSE(pinged->has_value());
  CHECK(b.node.stats(b.now).timeouts == 1);

  // add_node (from a peer-wire PORT message) sends a ping; the answer puts the node in the table.
  b.node.add_node(sim_addr(78, 6881), b.now);
  out = b.node.take_outgoing();
  REQUIRE(out.size() == 1);
  auto ping = krpc::decode(out[0].bytes);
  REQUIRE(ping);
  krpc::Response r;
  r.id = hash_of(78);
  b.node.receive(krpc::encode(krpc::make_response(ping->transaction_id, r)), sim_addr(79, 6881), b.now);
  CHECK(b.node.routing_table().size() == 0);  // wrong source address: ignored
  b.node.receive(krpc::encode(krpc::make_response(ping->transaction_id, r)), sim_addr(78, 6881), b.now);
  CHECK(b.node.routing_table().size() == 1);
}

TEST_CASE("dht service: real UDP nodes on loopback bootstrap, announce, find peers and serve metrics") {
  asio::io_context io;
  std::vector<std::unique_ptr<net::DhtService>> nodes;
  auto make = [&](std::vector<std::string> bootstrap) {
    net::DhtServiceOptions o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.bootstrap = std::move(bootstrap);
    o.node.bootstrap_retry = 1s;  // re-bootstrap quickly while the young network is thin
    o.node.query_timeout = 1s;
    o.node.maintenance_interval = 1s;
    auto s = std::make_unique<net::DhtService>(io, o);
    REQUIRE(s->start().ok());
    REQUIRE(s->local_port() != 0);
    nodes.push_back(std::move(s));
  };
  // Runs the io_context until pred holds or the (wall-clock) limit passes.
  auto run_until = [&](auto pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(20ms);
    }
    return pred();
  };
  make({});
  const std::string first = "127.0.0.1:" + std::to_string(nodes[0]->local_port());
  for (int i = 1; i < 10; ++i) make({first, "localhost:" + std::to_string(nodes[0]->local_port())});
  CHECK(run_until(
      [&] {
        for (auto& n : nodes) {
          if (n->stats().node.routing_nodes < 5) return false;
        }
        return true;
      },
      15s));

  const InfoHash hash = hash_of(77);
  std::optional<LookupResult> announced;
  nodes[2]->announce(hash, 7777, [&](const LookupResult& r) { announced = r; });
  REQUIRE(run_until([&] { return announced.has_value(); }, 15s));
  CHECK(announced->announced_to >= 1);

  std::vector<PeerAddress> found;
  std::optional<LookupResult> done;
  nodes[7]->get_peers(
      hash, [&](const std::vector<PeerAddress>& p) { found.insert(found.end(), p.begin(), p.end()); },
      [&](const LookupResult& r) { done = r; });
  REQUIRE(run_until([&] { return done.has_value(); }, 15s));
  REQUIRE(found.size() == 1);
  CHECK(found[0].to_string() == "127.0.0.1:7777");

  // A node learnt from a peer-wire PORT message: pinged, then in the table.
  net::DhtServiceOptions lone;
  lone.bind_address = "127.0.0.1";
  lone.port = 0;
  net::DhtService alone(io, lone);
  REQUIRE(alone.start().ok());
  alone.add_node(*PeerAddress::parse(first));
  CHECK(run_until([&] { return alone.stats().node.routing_nodes == 1; }, 5s));

  // A malformed datagram over the wire is counted, not fatal.
  asio::ip::udp::socket raw(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  raw.send_to(asio::buffer(std::string("d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe")),
              asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), nodes[0]->local_port()));
  CHECK(run_until([&] { return nodes[0]->stats().node.malformed == 1; }, 5s));

  // What a restart would bootstrap from: good nodes, as host:port strings the service accepts.
  auto known = nodes[0]->known_nodes();
  CHECK(known.size() >= 5);
  for (const auto& k : known) CHECK(net::split_host_port(k));

  auto metrics = nodes[0]->metrics_text();
  CHECK(metrics.find("playhead_dht_routing_nodes ") != std::string::npos);
  CHECK(metrics.find("# TYPE playhead_dht_queries_in_total counter") != std::string::npos);
  CHECK(nodes[0]->stats().node.queries_in > 0);

  // Tear down with lookups still running: no handler may touch a destroyed service.
  nodes[3]->get_peers(hash_of(5), {}, {});
  nodes.clear();
  io.restart();
  io.run_for(100ms);
}

TEST_CASE("dht service: bad bind address and bootstrap parsing") {
  asio::io_context io;
  net::DhtServiceOptions o;
  o.bind_address = "not an address";
  net::DhtService s(io, o);
  auto r = s.start();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("bad bind address") != std::string::npos);
  CHECK(net::split_host_port("router.bittorrent.com:6881") == std::make_pair(std::string("router.bittorrent.com"), std::uint16_t{6881}));
  CHECK(net::split_host_port("[::1]:25401") == std::make_pair(std::string("::1"), std::uint16_t{25401}));
  CHECK_FALSE(net::split_host_port("nohost"));
  CHECK_FALSE(net::split_host_port("host:0"));
  CHECK_FALSE(net::split_host_port("host:70000"));
  CHECK_FALSE(net::split_host_port(":80"));
}
