// Routing table implementation. Buckets are small (k entries, k replacements), so linear scans inside a bucket are
// the cheapest correct choice; the whole table holds at most 160 * 2k entries.
#include "net/dht_routing_table.hpp"

#include <algorithm>
#include <bit>

namespace ph::dht {

Id20 xor_distance(const Id20& a, const Id20& b) {
  Id20 d;
  for (std::size_t i = 0; i < 20; ++i) d.bytes[i] = static_cast<std::uint8_t>(a.bytes[i] ^ b.bytes[i]);
  return d;
}

int common_prefix_bits(const Id20& a, const Id20& b) {
  for (std::size_t i = 0; i < 20; ++i) {
    std::uint8_t x = static_cast<std::uint8_t>(a.bytes[i] ^ b.bytes[i]);
    if (x != 0) return static_cast<int>(i * 8) + std::countl_zero(x);
  }
  return 160;
}

bool closer_to(const Id20& target, const Id20& a, const Id20& b) {
  for (std::size_t i = 0; i < 20; ++i) {
    std::uint8_t da = static_cast<std::uint8_t>(a.bytes[i] ^ target.bytes[i]);
    std::uint8_t db = static_cast<std::uint8_t>(b.bytes[i] ^ target.bytes[i]);
    if (da != db) return da < db;
  }
  return false;
}

Id20 random_id(std::mt19937_64& rng) {
  Id20 id;
  for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng());
  return id;
}

Id20 random_id_with_prefix(const Id20& own, int prefix_bits, bool at_least, std::mt19937_64& rng) {
  Id20 id = random_id(rng);
  prefix_bits = std::clamp(prefix_bits, 0, 160);
  for (int bit = 0; bit < prefix_bits; ++bit) {
    const std::size_t byte = static_cast<std::size_t>(bit / 8);
    const std::uint8_t mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    id.bytes[byte] = static_cast<std::uint8_t>((id.bytes[byte] & ~mask) | (own.bytes[byte] & mask));
  }
  if (!at_least && prefix_bits < 160) {
    // Bit number `prefix_bits` must differ from ours, so the id falls in exactly that bucket.
    const std::size_t byte = static_cast<std::size_t>(prefix_bits / 8);
    const std::uint8_t mask = static_cast<std::uint8_t>(0x80u >> (prefix_bits % 8));
    id.bytes[byte] = static_cast<std::uint8_t>((id.bytes[byte] & ~mask) | (~own.bytes[byte] & mask));
  }
  return id;
}

const char* state_name(NodeState s) {
  switch (s) {
    case NodeState::good: return "good";
    case NodeState::questionable: return "questionable";
    case NodeState::bad: return "bad";
  }
  return "?";
}

RoutingTable::RoutingTable(const Id20& own, RoutingConfig config, TimePoint now) : own_(own), config_(config) {
  if (config_.k == 0) config_.k = 1;
  buckets_.push_back(Bucket{{}, {}, now});
}

std::size_t RoutingTable::bucket_index(const Id20& id) const {
  return std::min<std::size_t>(static_cast<std::size_t>(common_prefix_bits(own_, id)), buckets_.size() - 1);
}

NodeState RoutingTable::state(const RoutingEntry& e, TimePoint now) const {
  if (e.fail_count >= config_.bad_after_failures) return NodeState::bad;
  // BEP 5: good if it answered us within the window, or has ever answered and queried us within the window.
  if (e.ever_responded && now - e.last_response < config_.good_window) return NodeState::good;
  if (e.ever_responded && now - e.last_query < config_.good_window) return NodeState::good;
  return NodeState::questionable;
}

RoutingEntry* RoutingTable::find_mut(const Id20& id) {
  auto& b = buckets_[bucket_index(id)];
  for (auto& e : b.live) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

const RoutingEntry* RoutingTable::find(const Id20& id) const {
  const auto& b = buckets_[bucket_index(id)];
  for (const auto& e : b.live) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

bool RoutingTable::split_last() {
  // The last bucket covers ids sharing >= L bits with ours; splitting moves those sharing > L bits to a new bucket.
  if (buckets_.size() >= 160) return false;
  const std::size_t L = buckets_.size() - 1;
  Bucket next;
  next.last_changed = buckets_[L].last_changed;
  auto move_deeper = [&](std::vector<RoutingEntry>& from, std::vector<RoutingEntry>& to) {
    auto it = std::stable_partition(from.begin(), from.end(), [&](const RoutingEntry& e) {
      return static_cast<std::size_t>(common_prefix_bits(own_, e.id)) == L;
    });
    to.insert(to.end(), it, from.end());
    from.erase(it, from.end());
  };
  move_deeper(buckets_[L].live, next.live);
  move_deeper(buckets_[L].replacements, next.replacements);
  buckets_.push_back(std::move(next));
  // Each side may now have room: promote its freshest replacement candidates.
  for (std::size_t i : {L, L + 1}) {
    auto& b = buckets_[i];
    while (b.live.size() < config_.k && !b.replacements.empty()) {
      b.live.push_back(b.replacements.back());
      b.replacements.pop_back();
    }
    // A split can leave more than k nodes on one side only if it had more than k before, which insert prevents.
  }
  return true;
}

bool RoutingTable::would_accept(const Id20& id, TimePoint now) const {
  if (id == own_) return false;
  const std::size_t idx = bucket_index(id);
  const auto& b = buckets_[idx];
  for (const auto& e : b.live) {
    if (e.id == id) return true;
  }
  if (b.live.size() < config_.k) return true;
  if (idx == buckets_.size() - 1 && buckets_.size() < 160) return true;
  return std::any_of(b.live.begin(), b.live.end(), [&](const RoutingEntry& e) {
    return state(e, now) == NodeState::bad;
  });
}

InsertResult RoutingTable::heard_from(const Id20& id, const PeerAddress& address, bool responded, TimePoint now,
                                      std::vector<RoutingEntry>* to_ping) {
  if (id == own_) return InsertResult::ignored;
  if (RoutingEntry* e = find_mut(id)) {
    if (e->address != address) {
      // Another address claiming a known id: keep the entry we verified unless it has gone bad.
      if (state(*e, now) != NodeState::bad) return InsertResult::ignored;
      e->address = address;
    }
    if (responded) {
      e->last_response = now;
      e->ever_responded = true;
      e->fail_count = 0;
    } else {
      e->last_query = now;
    }
    buckets_[bucket_index(id)].last_changed = now;
    return InsertResult::updated;
  }
  if (!responded) return InsertResult::ignored;

  RoutingEntry fresh;
  fresh.id = id;
  fresh.address = address;
  fresh.last_response = now;
  fresh.ever_responded = true;

  for (;;) {
    const std::size_t idx = bucket_index(id);
    Bucket& b = buckets_[idx];
    if (b.live.size() < config_.k) {
      b.live.push_back(fresh);
      b.last_changed = now;
      return InsertResult::inserted;
    }
    auto bad = std::find_if(b.live.begin(), b.live.end(),
                            [&](const RoutingEntry& e) { return state(e, now) == NodeState::bad; });
    if (bad != b.live.end()) {
      *bad = fresh;
      b.last_changed = now;
      return InsertResult::replaced;
    }
    if (idx == buckets_.size() - 1 && split_last()) continue;
    // Full of live nodes: remember the newcomer, and ask the caller to check the questionable ones.
    auto known = std::find_if(b.replacements.begin(), b.replacements.end(),
                              [&](const RoutingEntry& e) { return e.id == id; });
    if (known != b.replacements.end()) b.replacements.erase(known);
    if (b.replacements.size() >= config_.replacement_slots && !b.replacements.empty()) {
      b.replacements.erase(b.replacements.begin());
    }
    if (config_.replacement_slots > 0) b.replacements.push_back(fresh);
    if (to_ping) {
      for (const auto& e : b.live) {
        if (state(e, now) == NodeState::questionable) to_ping->push_back(e);
      }
    }
    return InsertResult::cached;
  }
}

void RoutingTable::failed(const Id20& id, const PeerAddress& address, TimePoint now) {
  const std::size_t idx = bucket_index(id);
  Bucket& b = buckets_[idx];
  for (auto it = b.live.begin(); it != b.live.end(); ++it) {
    if (it->id != id || it->address != address) continue;
    ++it->fail_count;
    if (state(*it, now) == NodeState::bad && !b.replacements.empty()) {
      *it = b.replacements.back();
      b.replacements.pop_back();
      b.last_changed = now;
    }
    return;
  }
  // A replacement candidate that does not answer is simply forgotten.
  std::erase_if(b.replacements, [&](const RoutingEntry& e) { return e.id == id; });
}

std::vector<RoutingEntry> RoutingTable::closest(const Id20& target, std::size_t n, TimePoint now) const {
  std::vector<RoutingEntry> out;
  for (const auto& b : buckets_) {
    for (const auto& e : b.live) {
      if (state(e, now) != NodeState::bad) out.push_back(e);
    }
  }
  auto cmp = [&](const RoutingEntry& a, const RoutingEntry& b) { return closer_to(target, a.id, b.id); };
  if (out.size() > n) {
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), cmp);
    out.resize(n);
  } else {
    std::sort(out.begin(), out.end(), cmp);
  }
  return out;
}

std::vector<Id20> RoutingTable::refresh_targets(TimePoint now, std::mt19937_64& rng) {
  std::vector<Id20> out;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    if (now - b.last_changed < config_.refresh_after) continue;
    const bool last = i == buckets_.size() - 1;
    out.push_back(random_id_with_prefix(own_, static_cast<int>(i), last, rng));
    b.last_changed = now;
  }
  return out;
}

std::vector<RoutingEntry> RoutingTable::questionable(TimePoint now, std::size_t n) const {
  std::vector<RoutingEntry> out;
  for (const auto& b : buckets_) {
    for (const auto& e : b.live) {
      if (state(e, now) == NodeState::questionable) out.push_back(e);
    }
  }
  auto activity = [](const RoutingEntry& e) { return std::max(e.last_response, e.last_query); };
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return activity(a) < activity(b); });
  if (out.size() > n) out.resize(n);
  return out;
}

std::size_t RoutingTable::size() const {
  std::size_t n = 0;
  for (const auto& b : buckets_) n += b.live.size();
  return n;
}

std::size_t RoutingTable::replacement_count() const {
  std::size_t n = 0;
  for (const auto& b : buckets_) n += b.replacements.size();
  return n;
}

std::vector<RoutingEntry> RoutingTable::all() const {
  std::vector<RoutingEntry> out;
  for (const auto& b : buckets_) out.insert(out.end(), b.live.begin(), b.live.end());
  return out;
}

std::size_t RoutingTable::count(NodeState s, TimePoint now) const {
  std::size_t n = 0;
  for (const auto& b : buckets_) {
    for (const auto& e : b.live) n += state(e, now) == s ? 1 : 0;
  }
  return n;
}

}  // namespace ph::dht
