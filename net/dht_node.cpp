// Sans-I/O DHT node: serving, routing-table upkeep and iterative lookups. Every collection here is bounded by a
// configuration value (pending queries, lookups, candidates, stored hashes and peers, rate-limit entries).
#include "net/dht_node.hpp"

#include <algorithm>
#include <cstring>

#include "net/sha1.hpp"

namespace ph::dht {

namespace {

std::array<std::uint8_t, 17> ip_key(const PeerAddress& a) {
  std::array<std::uint8_t, 17> k{};
  std::memcpy(k.data(), a.ip.data(), a.v6 ? 16 : 4);
  k[16] = a.v6 ? 1 : 0;
  return k;
}

bool is_loopback(const PeerAddress& a) {
  if (!a.v6) return a.ip[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kV6Loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return a.ip == kV6Loopback;
}

}  // namespace

const char* hop_kind_name(HopEvent::Kind k) {
  switch (k) {
    case HopEvent::Kind::queried: return "queried";
    case HopEvent::Kind::responded: return "responded";
    case HopEvent::Kind::failed: return "failed";
    case HopEvent::Kind::announced: return "announced";
  }
  return "?";
}

DhtNode::DhtNode(NodeConfig config, TimePoint now)
    : config_(std::move(config)),
      rng_(config_.seed),
      table_(config_.id.is_zero() ? random_id(rng_) : config_.id, config_.routing, now) {
  id_ = table_.own_id();
  if (config_.alpha == 0) config_.alpha = 1;
  for (auto& b : secret_) b = static_cast<std::uint8_t>(rng_());
  previous_secret_ = secret_;
  secret_rotated_ = now;
  next_maintenance_ = now + config_.maintenance_interval;
  next_bootstrap_ = now;
  bootstrap_backoff_ = config_.bootstrap_retry / 2;
  bootstrap_nodes_ = config_.bootstrap;
}

// ---- sending ---------------------------------------------------------------------------------------------------

std::string DhtNode::next_transaction_id() {
  // Four bytes: a counter keeps ids unique among pending queries, random bits make them hard to guess.
  for (;;) {
    std::uint32_t v = (next_tid_++ & 0xffffu) | static_cast<std::uint32_t>(rng_() << 16);
    std::string t(4, '\0');
    for (int i = 0; i < 4; ++i) t[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
    if (!pending_.contains(t)) return t;
  }
}

void DhtNode::send(const krpc::Message& m, const PeerAddress& to) {
  krpc::Message copy = m;
  copy.version = config_.version;
  Datagram d{to, krpc::encode(copy)};
  ++stats_.packets_out;
  stats_.bytes_out += d.bytes.size();
  outgoing_.push_back(std::move(d));
}

bool DhtNode::send_query(krpc::Query q, const PeerAddress& to, std::optional<Id20> expected_id, LookupId lookup,
                         TimePoint now, PingCallback on_ping) {
  if (pending_.size() >= config_.max_pending_queries) return false;
  q.id = id_;
  q.read_only = config_.read_only;
  std::string tid = next_transaction_id();
  Pending p;
  p.to = to;
  p.method = q.method;
  p.expected_id = expected_id;
  p.lookup = lookup;
  p.deadline = now + config_.query_timeout;
  p.on_ping = std::move(on_ping);
  pending_.emplace(tid, std::move(p));
  ++stats_.queries_out;
  send(krpc::make_query(tid, std::move(q)), to);
  return true;
}

std::vector<Datagram> DhtNode::take_outgoing() {
  std::vector<Datagram> out;
  out.swap(outgoing_);
  return out;
}

void DhtNode::run_deferred() {
  while (!deferred_.empty()) {
    auto batch = std::move(deferred_);
    deferred_.clear();
    for (auto& f : batch) f();
  }
}

TimePoint DhtNode::next_deadline() const {
  TimePoint t = next_maintenance_;
  for (const auto& [tid, p] : pending_) t = std::min(t, p.deadline);
  return t;
}

// ---- input -----------------------------------------------------------------------------------------------------

void DhtNode::receive(std::string_view datagram, const PeerAddress& from, TimePoint now) {
  ++stats_.packets_in;
  stats_.bytes_in += datagram.size();
  krpc::DecodeFailure failure;
  auto m = krpc::decode(datagram, config_.limits, &failure);
  if (!m) {
    ++stats_.malformed;
    // Only something shaped like a query gets an (always small) error back, and only within the rate limit.
    if (failure.reply_expected && !failure.transaction_id.empty()) {
      if (rate_allow(from, now)) {
        send(krpc::make_error(failure.transaction_id, failure.code, failure.message.substr(0, 80)), from);
      } else {
        ++stats_.rate_limited;
      }
    }
    return;
  }
  if (m->is_query()) {
    if (!rate_allow(from, now)) {
      ++stats_.rate_limited;
      return;
    }
    ++stats_.queries_in;
    handle_query(*m, from, now);
  } else {
    handle_reply(*m, from, now);
  }
  run_deferred();
}

void DhtNode::tick(TimePoint now) {
  std::vector<std::string> expired;
  for (const auto& [tid, p] : pending_) {
    if (p.deadline <= now) expired.push_back(tid);
  }
  for (const auto& tid : expired) {
    auto it = pending_.find(tid);
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    ++stats_.timeouts;
    on_query_failed(tid, std::move(p), "timeout", now);
  }
  if (now >= next_maintenance_) {
    maintenance(now);
    next_maintenance_ = now + config_.maintenance_interval;
  }
  run_deferred();
}

// ---- serving ---------------------------------------------------------------------------------------------------

bool DhtNode::rate_allow(const PeerAddress& from, TimePoint now) {
  if (!config_.rate_limit_loopback && is_loopback(from)) return true;
  auto key = ip_key(from);
  auto it = rate_.find(key);
  if (it == rate_.end()) {
    if (rate_.size() >= config_.max_rate_entries) {
      // Forget sources idle long enough to have refilled their bucket; they lose nothing by being forgotten.
      const auto refill = std::chrono::duration<double>(config_.rate_burst / std::max(config_.rate_per_second, 1e-9));
      std::erase_if(rate_, [&](const auto& kv) { return now - kv.second.last >= refill; });
      if (rate_.size() >= config_.max_rate_entries) return false;
    }
    it = rate_.emplace(key, RateBucket{config_.rate_burst, now}).first;
  }
  RateBucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(config_.rate_burst, b.tokens + std::max(0.0, elapsed) * config_.rate_per_second);
  b.last = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

std::string DhtNode::make_token(const PeerAddress& from, const InfoHash& hash, int generation) const {
  const auto& secret = generation == 0 ? secret_ : previous_secret_;
  std::string material(reinterpret_cast<const char*>(secret.data()), secret.size());
  material.append(reinterpret_cast<const char*>(from.ip.data()), from.v6 ? 16 : 4);
  material.append(hash.view());
  return std::string(Sha1::of(material).view().substr(0, 8));
}

bool DhtNode::token_valid(std::string_view token, const PeerAddress& from, const InfoHash& hash) const {
  return token == make_token(from, hash, 0) || token == make_token(from, hash, 1);
}

krpc::Response DhtNode::base_response(const Id20& target, const PeerAddress& from, bool want_v4, bool want_v6,
                                      TimePoint now) const {
  krpc::Response r;
  r.id = id_;
  if (!want_v4 && !want_v6) (from.v6 ? want_v6 : want_v4) = true;
  for (const auto& e : table_.closest(target, config_.routing.k * 2, now)) {
    auto& list = e.address.v6 ? r.nodes6 : r.nodes;
    if ((e.address.v6 ? want_v6 : want_v4) && list.size() < config_.routing.k) list.push_back({e.id, e.address});
  }
  return r;
}

void DhtNode::store_peer(const InfoHash& hash, const PeerAddress& peer, TimePoint now) {
  auto it = store_.find(hash);
  if (it == store_.end()) {
    if (store_.size() >= config_.max_stored_hashes) {
      ++stats_.store_full;
      return;
    }
    it = store_.emplace(hash, std::vector<StoredPeer>{}).first;
  }
  auto& peers = it->second;
  ++stats_.announces_stored;
  for (auto& p : peers) {
    if (p.address == peer) {
      p.expires = now + config_.peer_ttl;
      return;
    }
  }
  if (peers.size() >= config_.max_peers_per_hash) {
    // Full: the announcement closest to expiry gives way to the fresh one.
    auto oldest = std::min_element(peers.begin(), peers.end(),
                                   [](const StoredPeer& a, const StoredPeer& b) { return a.expires < b.expires; });
    *oldest = StoredPeer{peer, now + config_.peer_ttl};
    return;
  }
  peers.push_back(StoredPeer{peer, now + config_.peer_ttl});
  ++stored_peer_count_;
}

void DhtNode::handle_query(const krpc::Message& m, const PeerAddress& from, TimePoint now) {
  const krpc::Query& q = m.query();
  if (!q.read_only && q.id != id_) heard_node(q.id, from, false, now);
  krpc::Response r;
  switch (q.method) {
    case krpc::Method::ping:
      r.id = id_;
      break;
    case krpc::Method::find_node:
      r = base_response(q.target, from, q.want_v4, q.want_v6, now);
      break;
    case krpc::Method::get_peers: {
      r = base_response(q.target, from, q.want_v4, q.want_v6, now);
      r.token = make_token(from, q.target, 0);
      auto it = store_.find(q.target);
      if (it != store_.end()) {
        // Size the values so the whole reply stays under max_reply_bytes: ~120 bytes of framing, id and token,
        // 26/38 bytes per node, 8/21 bytes per bencoded compact peer.
        std::size_t used = 120 + r.nodes.size() * 26 + r.nodes6.size() * 38;
        const std::size_t per_value = from.v6 ? 21 : 8;
        std::size_t room = used < config_.max_reply_bytes ? (config_.max_reply_bytes - used) / per_value : 0;
        room = std::min(room, config_.max_values_per_reply);
        // Newest announcements last: hand out from the back.
        for (auto p = it->second.rbegin(); p != it->second.rend() && r.values.size() < room; ++p) {
          if (p->expires > now && p->address.v6 == from.v6) r.values.push_back(p->address);
        }
      }
      break;
    }
    case krpc::Method::announce_peer: {
      if (!token_valid(q.token, from, q.target)) {
        ++stats_.bad_tokens;
        send(krpc::make_error(m.transaction_id, krpc::protocol_error, "bad token"), from);
        return;
      }
      PeerAddress peer = from;
      if (!q.implied_port) peer.port = q.port;
      store_peer(q.target, peer, now);
      r.id = id_;
      break;
    }
  }
  krpc::Message reply = krpc::make_response(m.transaction_id, std::move(r));
  reply.your_ip = from;  // BEP 42: tell the querier how we see it
  send(reply, from);
}

// ---- client side -----------------------------------------------------------------------------------------------

void DhtNode::heard_node(const Id20& id, const PeerAddress& address, bool responded, TimePoint now) {
  auto pinging = [&](const PeerAddress& a) {
    return std::any_of(pending_.begin(), pending_.end(), [&](const auto& kv) { return kv.second.to == a; });
  };
  if (responded) {
    std::vector<RoutingEntry> to_ping;
    table_.heard_from(id, address, true, now, &to_ping);
    // A full bucket: check up to two of its questionable nodes so that dead ones can be replaced.
    std::size_t sent = 0;
    for (const auto& e : to_ping) {
      if (sent == 2) break;
      if (pinging(e.address)) continue;
      if (send_query(krpc::Query{}, e.address, e.id, 0, now)) ++sent;
    }
    return;
  }
  if (table_.heard_from(id, address, false, now) == InsertResult::updated) return;
  // An unknown querier that would fit: ping it, and it enters the table if it answers (its address is real).
  if (!table_.find(id) && table_.would_accept(id, now) && !pinging(address)) {
    (void)send_query(krpc::Query{}, address, id, 0, now);
  }
}

void DhtNode::handle_reply(const krpc::Message& m, const PeerAddress& from, TimePoint now) {
  auto it = pending_.find(m.transaction_id);
  if (it == pending_.end() || it->second.to != from) {
    // Unknown transaction, or a reply from an address we did not ask: possibly spoofed. Ignored.
    ++stats_.unexpected_responses;
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (m.is_error()) {
    ++stats_.errors_in;
    on_query_failed(m.transaction_id, std::move(p),
                    "error " + std::to_string(m.error().code) + " " + m.error().message, now);
    return;
  }
  ++stats_.responses_in;
  const krpc::Response& r = m.response();
  if (r.id != id_) heard_node(r.id, from, true, now);
  if (p.on_ping) deferred_.push_back([cb = std::move(p.on_ping), id = r.id] { cb(id); });
  if (p.lookup == 0) return;
  auto lit = lookups_.find(p.lookup);
  if (lit == lookups_.end()) return;
  Lookup& l = lit->second;
  if (l.in_flight > 0) --l.in_flight;

  if (p.method == krpc::Method::announce_peer) {
    if (l.announce_pending > 0) --l.announce_pending;
    ++l.result.announced_to;
    emit_hop(l, HopEvent::Kind::announced, from, r.id);
    if (l.announce_pending == 0) finish(l.id, now);
    return;
  }

  ++l.result.responded;
  // Mark the candidate (or seed) as responded. A bootstrap seed's id is learnt now; a node answering with another id
  // than the one we were told is re-sorted under its real id.
  std::string token = r.token.value_or(std::string{});
  for (auto& s : l.seeds) {
    if (s.address == from) s.state = CandidateState::responded;
  }
  auto known = std::find_if(l.candidates.begin(), l.candidates.end(),
                            [&](const Candidate& c) { return c.address == from; });
  if (known != l.candidates.end() && known->id != r.id) {
    l.candidates.erase(known);
    known = l.candidates.end();
  }
  if (known == l.candidates.end() && r.id != id_) add_candidate(l, {r.id, from});
  for (auto& c : l.candidates) {
    if (c.address == from) {
      c.state = CandidateState::responded;
      c.token = token;
    }
  }
  // Only nodes of the family we are talking on are reachable through this socket.
  const auto& nodes = from.v6 ? r.nodes6 : r.nodes;
  for (const auto& n : nodes) add_candidate(l, n);

  std::vector<PeerAddress> fresh;
  if (l.kind != LookupKind::find_node) {
    for (const auto& v : r.values) {
      if (v.port == 0) continue;
      if (std::find(l.peers_seen.begin(), l.peers_seen.end(), v) != l.peers_seen.end()) continue;
      if (l.peers_seen.size() >= 1000) break;  // bound memory; the torrent has enough peers by then
      l.peers_seen.push_back(v);
      fresh.push_back(v);
    }
  }
  emit_hop(l, HopEvent::Kind::responded, from, r.id, nodes.size(), r.values.size(), r.token.has_value());
  if (!fresh.empty() && l.on_peers) {
    // Streaming must not wait for the lookup to finish: hand peers over as each reply brings them.
    deferred_.push_back([cb = l.on_peers, fresh = std::move(fresh)] { cb(fresh); });
  }
  step(l.id, now);
}

void DhtNode::on_query_failed(const std::string& /*tid*/, Pending p, const std::string& why, TimePoint now) {
  const bool timed_out = why == "timeout";
  if (timed_out && p.expected_id) table_.failed(*p.expected_id, p.to, now);
  if (p.on_ping) deferred_.push_back([cb = std::move(p.on_ping)] { cb(std::nullopt); });
  if (p.lookup == 0) return;
  auto lit = lookups_.find(p.lookup);
  if (lit == lookups_.end()) return;
  Lookup& l = lit->second;
  if (l.in_flight > 0) --l.in_flight;
  if (p.method == krpc::Method::announce_peer) {
    if (l.announce_pending > 0) --l.announce_pending;
    emit_hop(l, HopEvent::Kind::failed, p.to, p.expected_id, 0, 0, false, "announce_peer: " + why);
    if (l.announce_pending == 0) finish(l.id, now);
    return;
  }
  ++l.result.failed;
  for (auto& c : l.candidates) {
    if (c.address == p.to) c.state = CandidateState::failed;
  }
  for (auto& s : l.seeds) {
    if (s.address == p.to) s.state = CandidateState::failed;
  }
  emit_hop(l, HopEvent::Kind::failed, p.to, p.expected_id, 0, 0, false, why);
  step(l.id, now);
}

void DhtNode::add_candidate(Lookup& l, const krpc::NodeInfo& n) {
  if (n.id == id_ || n.address.port == 0) return;
  for (const auto& c : l.candidates) {
    if (c.address == n.address || (c.id && *c.id == n.id)) return;
  }
  // A bootstrap seed still being asked is not asked a second time as a candidate.
  for (const auto& s : l.seeds) {
    if (s.address == n.address && s.state != CandidateState::responded) return;
  }
  Candidate c;
  c.id = n.id;
  c.address = n.address;
  auto pos = std::upper_bound(l.candidates.begin(), l.candidates.end(), n.id, [&](const Id20& id, const Candidate& o) {
    return closer_to(l.target, id, *o.id);
  });
  if (pos - l.candidates.begin() >= static_cast<std::ptrdiff_t>(config_.max_lookup_candidates)) return;
  l.candidates.insert(pos, std::move(c));
  if (l.candidates.size() > config_.max_lookup_candidates) l.candidates.pop_back();
}

void DhtNode::emit_hop(const Lookup& l, HopEvent::Kind kind, const PeerAddress& node, std::optional<Id20> node_id,
                       std::size_t nodes, std::size_t values, bool token, std::string detail) {
  if (!hop_observer_) return;
  HopEvent e;
  e.lookup = l.id;
  e.target = l.target;
  e.kind = kind;
  e.node = node;
  e.node_id = node_id;
  e.nodes_returned = nodes;
  e.values_returned = values;
  e.token = token;
  e.detail = std::move(detail);
  hop_observer_(e);
}

DhtNode::LookupId DhtNode::start_lookup(LookupKind kind, const Id20& target, std::uint16_t port,
                                        PeersCallback on_peers, DoneCallback on_done, TimePoint now) {
  if (lookups_.size() >= config_.max_lookups) return 0;
  const LookupId id = next_lookup_++;
  Lookup& l = lookups_[id];
  l.id = id;
  l.kind = kind;
  l.target = target;
  l.port = port;
  l.on_peers = std::move(on_peers);
  l.on_done = std::move(on_done);
  l.result.lookup = id;
  l.result.target = target;
  for (const auto& e : table_.closest(target, config_.routing.k * 2, now)) add_candidate(l, {e.id, e.address});
  if (table_.size() < config_.routing.k) {
    for (const auto& b : bootstrap_nodes_) {
      bool known = std::any_of(l.candidates.begin(), l.candidates.end(),
                               [&](const Candidate& c) { return c.address == b; });
      if (!known && l.seeds.size() < 16) l.seeds.push_back(Candidate{std::nullopt, b, CandidateState::fresh, {}});
    }
  }
  step(id, now);
  return id;
}

void DhtNode::step(LookupId id, TimePoint now) {
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;
  Lookup& l = it->second;
  if (l.announcing) return;

  auto query_for = [&](const Candidate& c) {
    krpc::Query q;
    q.method = l.kind == LookupKind::find_node ? krpc::Method::find_node : krpc::Method::get_peers;
    q.target = l.target;
    return send_query(std::move(q), c.address, c.id, l.id, now);
  };
  auto launch = [&](Candidate& c) {
    if (!query_for(c)) return false;
    c.state = CandidateState::in_flight;
    ++l.in_flight;
    ++l.result.queried;
    emit_hop(l, HopEvent::Kind::queried, c.address, c.id);
    return true;
  };

  bool stalled = false;
  bool seeds_busy = false;
  for (auto& s : l.seeds) {
    if (s.state == CandidateState::fresh && l.in_flight < config_.alpha && !stalled) stalled = !launch(s);
    if (s.state == CandidateState::fresh || s.state == CandidateState::in_flight) seeds_busy = true;
  }
  // The k closest candidates that have not failed decide convergence.
  std::size_t considered = 0;
  bool all_responded = true;
  for (auto& c : l.candidates) {
    if (c.state == CandidateState::failed) continue;
    if (considered == config_.routing.k) break;
    ++considered;
    if (c.state == CandidateState::fresh && l.in_flight < config_.alpha && !stalled) stalled = !launch(c);
    if (c.state != CandidateState::responded) all_responded = false;
  }
  if (stalled && l.in_flight == 0) return;  // out of query slots: maintenance steps us again
  const bool converged = considered > 0 && all_responded && (considered >= config_.routing.k || !seeds_busy);
  const bool exhausted = l.in_flight == 0 && !seeds_busy && (considered == 0 || all_responded);
  if (!converged && !exhausted) return;

  if (l.kind == LookupKind::announce) {
    l.announcing = true;
    std::size_t n = 0;
    for (auto& c : l.candidates) {
      if (n == config_.routing.k) break;
      if (c.state != CandidateState::responded) continue;
      ++n;
      if (c.token.empty()) continue;
      krpc::Query q;
      q.method = krpc::Method::announce_peer;
      q.target = l.target;
      q.port = l.port;
      q.implied_port = l.port == 0;
      q.token = c.token;
      if (send_query(std::move(q), c.address, c.id, l.id, now)) {
        ++l.announce_pending;
        ++l.in_flight;
      }
    }
    if (l.announce_pending > 0) return;
  }
  finish(id, now);
}

void DhtNode::finish(LookupId id, TimePoint now) {
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;
  Lookup l = std::move(it->second);
  lookups_.erase(it);
  for (const auto& c : l.candidates) {
    if (l.result.closest.size() == config_.routing.k) break;
    if (c.state == CandidateState::responded && c.id) l.result.closest.push_back({*c.id, c.address});
  }
  l.result.peers = l.peers_seen.size();
  if (l.join) {
    // Kademlia's join: a lookup of our own id fills the buckets near us; the far buckets are only filled by others
    // querying us, so refresh every bucket that is still short of k nodes now rather than in 15 minutes.
    for (std::size_t i = 0; i + 1 < table_.bucket_count(); ++i) {
      if (table_.bucket_size(i) >= config_.routing.k) continue;
      (void)start_lookup(LookupKind::find_node, random_id_with_prefix(id_, static_cast<int>(i), false, rng_), 0, {},
                         {}, now);
    }
  }
  if (l.on_done) deferred_.push_back([cb = std::move(l.on_done), result = std::move(l.result)] { cb(result); });
}

void DhtNode::cancel(LookupId id) { lookups_.erase(id); }

DhtNode::LookupId DhtNode::find_node(const Id20& target, DoneCallback on_done, TimePoint now) {
  LookupId id = start_lookup(LookupKind::find_node, target, 0, {}, std::move(on_done), now);
  run_deferred();
  return id;
}

DhtNode::LookupId DhtNode::get_peers(const InfoHash& info_hash, PeersCallback on_peers, DoneCallback on_done,
                                     TimePoint now) {
  LookupId id = start_lookup(LookupKind::get_peers, info_hash, 0, std::move(on_peers), std::move(on_done), now);
  run_deferred();
  return id;
}

DhtNode::LookupId DhtNode::announce(const InfoHash& info_hash, std::uint16_t port, PeersCallback on_peers,
                                    DoneCallback on_done, TimePoint now) {
  LookupId id = start_lookup(LookupKind::announce, info_hash, port, std::move(on_peers), std::move(on_done), now);
  run_deferred();
  return id;
}

void DhtNode::bootstrap(const std::vector<PeerAddress>& nodes, TimePoint now) {
  for (const auto& n : nodes) {
    if (bootstrap_nodes_.size() >= 64) break;
    if (std::find(bootstrap_nodes_.begin(), bootstrap_nodes_.end(), n) == bootstrap_nodes_.end()) {
      bootstrap_nodes_.push_back(n);
    }
  }
  bootstrap_backoff_ = config_.bootstrap_retry;
  next_bootstrap_ = now + bootstrap_backoff_;
  join_lookup(now);
  run_deferred();
}

void DhtNode::join_lookup(TimePoint now) {
  if (LookupId id = start_lookup(LookupKind::find_node, id_, 0, {}, {}, now)) {
    auto it = lookups_.find(id);
    if (it != lookups_.end()) it->second.join = true;
  }
}

void DhtNode::add_node(const PeerAddress& address, TimePoint now) { ping(address, now); }

void DhtNode::ping(const PeerAddress& address, TimePoint now, PingCallback on_reply) {
  if (!send_query(krpc::Query{}, address, std::nullopt, 0, now, std::move(on_reply))) {
    if (on_reply) deferred_.push_back([cb = std::move(on_reply)] { cb(std::nullopt); });
  }
  run_deferred();
}

void DhtNode::start_announcing(const InfoHash& info_hash, std::uint16_t port, TimePoint now) {
  announcing_[info_hash] = Announcing{port, now + config_.reannounce_interval};
  (void)start_lookup(LookupKind::announce, info_hash, port, {}, {}, now);
  run_deferred();
}

void DhtNode::stop_announcing(const InfoHash& info_hash) { announcing_.erase(info_hash); }

// ---- upkeep ----------------------------------------------------------------------------------------------------

void DhtNode::maintenance(TimePoint now) {
  if (now - secret_rotated_ >= config_.token_rotation) {
    // Tokens handed out in the previous period stay valid for one more period (BEP 5: 10 minutes in total).
    previous_secret_ = secret_;
    for (auto& b : secret_) b = static_cast<std::uint8_t>(rng_());
    secret_rotated_ = now;
  }
  for (auto it = store_.begin(); it != store_.end();) {
    auto& peers = it->second;
    const std::size_t before = peers.size();
    std::erase_if(peers, [&](const StoredPeer& p) { return p.expires <= now; });
    stored_peer_count_ -= before - peers.size();
    it = peers.empty() ? store_.erase(it) : std::next(it);
  }
  const auto refill = std::chrono::duration<double>(config_.rate_burst / std::max(config_.rate_per_second, 1e-9));
  std::erase_if(rate_, [&](const auto& kv) { return now - kv.second.last >= refill; });

  // A thin table (a young network, or everyone we knew went away): look ourselves up again, through the bootstrap
  // nodes and whoever we know. The interval doubles each time so a small network is not polled forever.
  if (table_.size() < config_.routing.k && (!bootstrap_nodes_.empty() || table_.size() > 0) &&
      now >= next_bootstrap_) {
    bootstrap_backoff_ = std::min<Duration>(bootstrap_backoff_ * 2, std::chrono::minutes(15));
    next_bootstrap_ = now + bootstrap_backoff_;
    join_lookup(now);
  }
  if (table_.size() > 0) {
    for (const auto& target : table_.refresh_targets(now, rng_)) {
      (void)start_lookup(LookupKind::find_node, target, 0, {}, {}, now);
    }
  }
  std::size_t pings = 0;
  for (const auto& e : table_.questionable(now, 8)) {
    if (pings == 4) break;
    bool pending = std::any_of(pending_.begin(), pending_.end(), [&](const auto& kv) { return kv.second.to == e.address; });
    if (!pending && send_query(krpc::Query{}, e.address, e.id, 0, now)) ++pings;
  }
  for (auto& [hash, a] : announcing_) {
    if (now < a.next) continue;
    a.next = now + config_.reannounce_interval;
    (void)start_lookup(LookupKind::announce, hash, a.port, {}, {}, now);
  }
  // Lookups stalled on the pending-query limit get another chance.
  std::vector<LookupId> ids;
  for (const auto& [id, l] : lookups_) ids.push_back(id);
  for (auto id : ids) step(id, now);
}

NodeStats DhtNode::stats(TimePoint now) const {
  NodeStats s = stats_;
  s.routing_nodes = table_.size();
  s.routing_good = table_.count(NodeState::good, now);
  s.routing_buckets = table_.bucket_count();
  s.replacement_nodes = table_.replacement_count();
  s.stored_hashes = store_.size();
  s.stored_peers = stored_peer_count_;
  s.active_lookups = lookups_.size();
  s.pending_queries = pending_.size();
  s.rate_entries = rate_.size();
  return s;
}

std::vector<krpc::NodeInfo> DhtNode::known_nodes(TimePoint now, std::size_t max) const {
  std::vector<RoutingEntry> good;
  for (const auto& e : table_.all()) {
    if (table_.state(e, now) == NodeState::good) good.push_back(e);
  }
  std::sort(good.begin(), good.end(), [](const RoutingEntry& a, const RoutingEntry& b) {
    return std::max(a.last_response, a.last_query) > std::max(b.last_response, b.last_query);
  });
  std::vector<krpc::NodeInfo> out;
  for (const auto& e : good) {
    if (out.size() == max) break;
    out.push_back({e.id, e.address});
  }
  return out;
}

std::vector<PeerAddress> DhtNode::stored_peers(const InfoHash& info_hash) const {
  std::vector<PeerAddress> out;
  auto it = store_.find(info_hash);
  if (it != store_.end()) {
    for (const auto& p : it->second) out.push_back(p.address);
  }
  return out;
}

}  // namespace ph::dht
