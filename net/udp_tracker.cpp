#include "net/udp_tracker.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace ph::tracker::udp {

// ---- Codec --------------------------------------------------------------------------------------------------------

namespace {

void put32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
void put64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
std::uint32_t get32(std::string_view in, std::size_t off) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<std::uint8_t>(in[off + i]);
  return v;
}
std::uint64_t get64(std::string_view in, std::size_t off) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<std::uint8_t>(in[off + i]);
  return v;
}
std::uint32_t clamp32(std::int64_t v) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(v, 0, std::numeric_limits<std::int32_t>::max()));
}

std::string header(std::uint64_t connection_id, Action action, std::uint32_t tid) {
  std::string out;
  put64(out, connection_id);
  put32(out, static_cast<std::uint32_t>(action));
  put32(out, tid);
  return out;
}

std::string reply_header(Action action, std::uint32_t tid) {
  std::string out;
  put32(out, static_cast<std::uint32_t>(action));
  put32(out, tid);
  return out;
}

}  // namespace

std::string encode_connect_request(std::uint32_t transaction_id) {
  return header(kProtocolId, Action::connect, transaction_id);
}

std::string encode_announce_request(std::uint64_t connection_id, std::uint32_t transaction_id,
                                    const AnnounceRequest& req) {
  std::string out = header(connection_id, Action::announce, transaction_id);
  out += req.info_hash.view();
  out += req.peer_id.view();
  put64(out, req.downloaded);
  put64(out, req.left);
  put64(out, req.uploaded);
  put32(out, static_cast<std::uint32_t>(req.event));
  put32(out, 0);  // IP: 0 means "the sender's address"
  put32(out, req.key);
  put32(out, static_cast<std::uint32_t>(req.numwant));
  out += static_cast<char>(req.port >> 8);
  out += static_cast<char>(req.port & 0xff);
  return out;
}

std::string encode_scrape_request(std::uint64_t connection_id, std::uint32_t transaction_id,
                                  std::span<const InfoHash> hashes) {
  std::string out = header(connection_id, Action::scrape, transaction_id);
  for (const auto& h : hashes) out += h.view();
  return out;
}

Result<Request> decode_request(std::string_view d) {
  if (d.size() < 16) return make_error("udp tracker request shorter than 16 bytes");
  Request r;
  r.connection_id = get64(d, 0);
  std::uint32_t action = get32(d, 8);
  r.transaction_id = get32(d, 12);
  switch (action) {
    case 0:
      r.action = Action::connect;
      if (r.connection_id != kProtocolId) return make_error("connect request without the protocol id");
      return r;
    case 1: {
      r.action = Action::announce;
      if (d.size() < 98) return make_error("announce request shorter than 98 bytes");
      auto& a = r.announce;
      a.info_hash = InfoHash::from_bytes(d.substr(16, 20));
      a.peer_id = PeerId::from_bytes(d.substr(36, 20));
      a.downloaded = get64(d, 56);
      a.left = get64(d, 64);
      a.uploaded = get64(d, 72);
      std::uint32_t ev = get32(d, 80);
      if (ev > 3) return make_error("announce request with unknown event " + std::to_string(ev));
      a.event = static_cast<Event>(ev);
      a.key = get32(d, 88);
      a.numwant = static_cast<std::int32_t>(get32(d, 92));
      a.port = static_cast<std::uint16_t>(static_cast<std::uint8_t>(d[96]) << 8 | static_cast<std::uint8_t>(d[97]));
      return r;
    }
    case 2:
      r.action = Action::scrape;
      if ((d.size() - 16) % 20 != 0 || d.size() == 16) return make_error("scrape request with a partial info-hash");
      for (std::size_t off = 16; off < d.size(); off += 20) r.hashes.push_back(InfoHash::from_bytes(d.substr(off, 20)));
      return r;
    default:
      return make_error("udp tracker request with unknown action " + std::to_string(action));
  }
}

std::string encode_connect_reply(std::uint32_t transaction_id, std::uint64_t connection_id) {
  std::string out = reply_header(Action::connect, transaction_id);
  put64(out, connection_id);
  return out;
}

std::string encode_announce_reply(std::uint32_t transaction_id, std::int64_t interval, std::int64_t leechers,
                                  std::int64_t seeders, std::span<const PeerAddress> peers) {
  std::string out = reply_header(Action::announce, transaction_id);
  put32(out, clamp32(interval));
  put32(out, clamp32(leechers));
  put32(out, clamp32(seeders));
  for (const auto& p : peers) {
    out.append(reinterpret_cast<const char*>(p.ip.data()), p.v6 ? 16 : 4);
    out += static_cast<char>(p.port >> 8);
    out += static_cast<char>(p.port & 0xff);
  }
  return out;
}

std::string encode_scrape_reply(std::uint32_t transaction_id, std::span<const ScrapeEntry> entries) {
  std::string out = reply_header(Action::scrape, transaction_id);
  for (const auto& e : entries) {
    put32(out, clamp32(e.complete));
    put32(out, clamp32(e.downloaded));
    put32(out, clamp32(e.incomplete));
  }
  return out;
}

std::string encode_error_reply(std::uint32_t transaction_id, std::string_view message) {
  std::string out = reply_header(Action::error, transaction_id);
  out += message;
  return out;
}

std::optional<std::pair<std::uint32_t, std::uint32_t>> peek_header(std::string_view d) {
  if (d.size() < 8) return std::nullopt;
  return std::pair{get32(d, 0), get32(d, 4)};
}

Result<Reply> decode_reply(std::string_view d, bool v6_peers, std::span<const InfoHash> asked,
                           const ResponseLimits& limits) {
  if (d.size() < 8) return make_error("udp tracker reply shorter than 8 bytes");
  Reply r;
  std::uint32_t action = get32(d, 0);
  r.transaction_id = get32(d, 4);
  switch (action) {
    case 0:
      r.action = Action::connect;
      if (d.size() < 16) return make_error("truncated connect reply (" + std::to_string(d.size()) + " bytes, need 16)");
      r.connection_id = get64(d, 8);
      return r;
    case 1: {
      r.action = Action::announce;
      if (d.size() < 20) {
        // opentracker answers this way for info-hashes outside its whitelist.
        return make_error("truncated announce reply (" + std::to_string(d.size()) +
                          " bytes, need 20); the tracker may not track this torrent");
      }
      r.announce.interval = get32(d, 8);
      r.announce.incomplete = get32(d, 12);
      r.announce.complete = get32(d, 16);
      if (auto ok = parse_compact_peers(d.substr(20), v6_peers, r.announce.peers, limits.max_peers); !ok) {
        return make_error("announce reply: " + ok.error().message);
      }
      return r;
    }
    case 2: {
      r.action = Action::scrape;
      std::string_view body = d.substr(8);
      if (body.size() % 12 != 0) return make_error("scrape reply length is not 8 + 12 * n");
      std::size_t n = body.size() / 12;
      if (n > asked.size() || (!asked.empty() && n != asked.size())) {  // one entry per hash asked, in order
        return make_error("scrape reply has " + std::to_string(n) + " entries for " + std::to_string(asked.size()) +
                          " info-hashes asked");
      }
      for (std::size_t i = 0; i < n; ++i) {
        ScrapeEntry e;
        e.info_hash = asked[i];
        e.complete = get32(body, i * 12);
        e.downloaded = get32(body, i * 12 + 4);
        e.incomplete = get32(body, i * 12 + 8);
        r.scrape.push_back(e);
      }
      return r;
    }
    case 3: {
      r.action = Action::error;
      std::string_view msg = d.substr(8, limits.max_string);
      while (!msg.empty() && msg.back() == '\0') msg.remove_suffix(1);
      r.error = std::string(msg);
      return r;
    }
    default:
      return make_error("udp tracker reply with unknown action " + std::to_string(action));
  }
}

// ---- Client state machine -----------------------------------------------------------------------------------------

Machine::Machine(MachineConfig config) : config_(config), rng_(config.seed != 0 ? config.seed : std::random_device{}()) {}

std::uint32_t Machine::new_transaction_id() {
  for (;;) {
    auto tid = static_cast<std::uint32_t>(rng_());
    bool used = connecting_ && connecting_->transaction_id == tid;
    for (const auto& p : pending_) used = used || (p.sent && p.transaction_id == tid);
    if (!used) return tid;
  }
}

std::chrono::milliseconds Machine::timeout_for(unsigned attempt) const {
  return config_.retransmit_base * (1u << std::min(attempt, 16u));
}

bool Machine::has_connection_id(TimePoint now) const {
  return connection_id_ && now - connection_id_at_ < config_.connection_id_lifetime;
}

Machine::RequestId Machine::add(Pending p, TimePoint now) {
  const RequestId id = next_id_++;
  p.id = id;
  pending_.push_back(std::move(p));
  pump(now);
  return id;
}

Machine::RequestId Machine::announce(const AnnounceRequest& req, TimePoint now) {
  Pending p;
  p.announce = req;
  return add(std::move(p), now);
}

Machine::RequestId Machine::scrape(std::vector<InfoHash> hashes, TimePoint now) {
  Pending p;
  p.is_scrape = true;
  // BEP 15: about 74 info-hashes fit in one packet; more would be an oversized request.
  if (hashes.size() > 74) hashes.resize(74);
  p.hashes = std::move(hashes);
  return add(std::move(p), now);
}

void Machine::cancel(RequestId id) {
  std::erase_if(pending_, [id](const Pending& p) { return p.id == id; });
  if (pending_.empty()) connecting_.reset();  // nobody waits for it; a late reply is then simply ignored
}

void Machine::send_request(Pending& p, TimePoint now) {
  if (!p.sent) p.transaction_id = new_transaction_id();
  p.sent = true;
  p.deadline = now + timeout_for(p.attempt);
  out_.push_back(p.is_scrape ? encode_scrape_request(*connection_id_, p.transaction_id, p.hashes)
                             : encode_announce_request(*connection_id_, p.transaction_id, p.announce));
  ++stats_.datagrams_sent;
}

void Machine::pump(TimePoint now) {
  bool waiting = std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) { return !p.sent; });
  if (!waiting) return;
  if (has_connection_id(now)) {
    for (auto& p : pending_) {
      if (!p.sent) send_request(p, now);
    }
    return;
  }
  if (connecting_) return;
  connecting_ = Connecting{new_transaction_id(), 0, now + timeout_for(0)};
  out_.push_back(encode_connect_request(connecting_->transaction_id));
  ++stats_.datagrams_sent;
  ++stats_.connects;
}

void Machine::fail(Pending& p, std::string message) {
  Completion c;
  c.id = p.id;
  c.is_scrape = p.is_scrape;
  if (p.is_scrape) {
    c.scrape = make_error(std::move(message));
  } else {
    c.announce = make_error(std::move(message));
  }
  done_.push_back(std::move(c));
}

void Machine::fail_waiting(const std::string& message) {
  for (auto& p : pending_) {
    if (!p.sent) fail(p, message);
  }
  std::erase_if(pending_, [](const Pending& p) { return !p.sent; });
}

void Machine::on_timer(TimePoint now) {
  if (connecting_ && now >= connecting_->deadline) {
    if (connecting_->attempt >= config_.max_retransmits) {
      auto tries = connecting_->attempt + 1;
      connecting_.reset();
      fail_waiting("udp tracker did not answer connect (" + std::to_string(tries) + " attempts, timed out)");
    } else {
      ++connecting_->attempt;
      connecting_->deadline = now + timeout_for(connecting_->attempt);
      out_.push_back(encode_connect_request(connecting_->transaction_id));
      ++stats_.datagrams_sent;
      ++stats_.retransmits;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = *it;
    if (!p.sent || now < p.deadline) {
      ++it;
      continue;
    }
    if (p.attempt >= config_.max_retransmits) {
      fail(p, std::string("udp tracker did not answer ") + (p.is_scrape ? "scrape" : "announce") + " (" +
                  std::to_string(p.attempt + 1) + " attempts, timed out)");
      it = pending_.erase(it);
      continue;
    }
    ++p.attempt;
    ++stats_.retransmits;
    if (has_connection_id(now)) {
      p.deadline = now + timeout_for(p.attempt);
      out_.push_back(p.is_scrape ? encode_scrape_request(*connection_id_, p.transaction_id, p.hashes)
                                 : encode_announce_request(*connection_id_, p.transaction_id, p.announce));
      ++stats_.datagrams_sent;
    } else {
      p.sent = false;  // the connection id expired meanwhile: reconnect first, keeping the attempt count
    }
    ++it;
  }
  pump(now);
}

void Machine::on_datagram(std::string_view d, TimePoint now) {
  auto head = peek_header(d);
  if (!head) {
    ++stats_.ignored_datagrams;
    last_ignored_ = "datagram of " + std::to_string(d.size()) + " bytes is too short for a header";
    return;
  }
  const std::uint32_t tid = head->second;
  const bool oversized = d.size() > config_.max_datagram;

  if (connecting_ && connecting_->transaction_id == tid) {
    connecting_.reset();
    if (oversized) {
      fail_waiting("udp tracker sent an oversized connect reply (" + std::to_string(d.size()) + " bytes)");
      return;
    }
    auto reply = decode_reply(d, config_.v6, {}, config_.limits);
    if (!reply) {
      fail_waiting("udp tracker: " + reply.error().message);
    } else if (reply->action == Action::error) {
      fail_waiting("udp tracker error: " + reply->error);
    } else if (reply->action != Action::connect) {
      fail_waiting("udp tracker answered connect with action " + std::to_string(head->first));
    } else {
      connection_id_ = reply->connection_id;
      connection_id_at_ = now;
      pump(now);
    }
    return;
  }

  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [tid](const Pending& p) { return p.sent && p.transaction_id == tid; });
  if (it == pending_.end()) {
    ++stats_.ignored_datagrams;
    last_ignored_ = "datagram with unknown transaction id " + std::to_string(tid);
    return;
  }
  Pending p = std::move(*it);
  pending_.erase(it);
  if (oversized) {
    fail(p, "udp tracker sent an oversized reply (" + std::to_string(d.size()) + " bytes)");
    return;
  }
  auto reply = decode_reply(d, config_.v6, p.hashes, config_.limits);
  if (!reply) {
    fail(p, "udp tracker: " + reply.error().message);
    return;
  }
  if (reply->action == Action::error) {
    // Most often a stale or unknown connection id: start over with a fresh one next time.
    connection_id_.reset();
    fail(p, "udp tracker error: " + reply->error);
    return;
  }
  const Action expected = p.is_scrape ? Action::scrape : Action::announce;
  if (reply->action != expected) {
    fail(p, "udp tracker answered with action " + std::to_string(head->first) + ", expected " +
                std::to_string(static_cast<std::uint32_t>(expected)));
    return;
  }
  Completion c;
  c.id = p.id;
  c.is_scrape = p.is_scrape;
  if (p.is_scrape) {
    ScrapeResponse s;
    s.files = std::move(reply->scrape);
    c.scrape = std::move(s);
  } else {
    c.announce = std::move(reply->announce);
  }
  done_.push_back(std::move(c));
}

std::vector<std::string> Machine::take_datagrams() { return std::exchange(out_, {}); }

std::vector<Machine::Completion> Machine::take_completions() { return std::exchange(done_, {}); }

std::optional<TimePoint> Machine::next_timer() const {
  std::optional<TimePoint> t;
  if (connecting_) t = connecting_->deadline;
  for (const auto& p : pending_) {
    if (p.sent && (!t || p.deadline < *t)) t = p.deadline;
  }
  return t;
}

}  // namespace ph::tracker::udp
