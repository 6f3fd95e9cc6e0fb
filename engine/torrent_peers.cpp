// Torrent: the peers. The address pool with backoff, strikes and bans, outgoing and incoming connections, the
// handshake, and dispatching each peer message.
#include "engine/torrent_peer.hpp"

#include <algorithm>
#include <cstring>

#include "engine/log.hpp"

namespace ph::engine {

using Clock = std::chrono::steady_clock;

// ---- peers: connecting ---------------------------------------------------------------------------------------

void Torrent::add_peers(const std::vector<PeerAddress>& addresses, const char* source) {
  std::size_t added = 0;
  for (const auto& a : addresses) {
    if (a.port == 0 || pool_.size() >= options_.max_pool) continue;
    if (pool_.emplace(a, PoolEntry{}).second) ++added;
  }
  if (added > 0) log_debug("torrent", name_ + ": " + std::to_string(added) + " new peer addresses from " + source);
  if (started_ && !stopping_) connect_more();
}

namespace {
// Bans apply to the whole IP address, except on loopback where every test peer shares 127.0.0.1: there the
// address with its port is banned.
PeerAddress ban_key(PeerAddress a) {
  const bool loopback = a.v6 ? (a.ip == std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
                             : a.ip[0] == 127;
  if (!loopback) a.port = 0;
  return a;
}
}  // namespace

bool Torrent::is_banned(const PeerAddress& a) const { return banned_.count(ban_key(a)) != 0; }

void Torrent::ban(Peer& p, const std::string& reason) {
  auto& e = pool_[p.address];
  e.banned = true;
  banned_.insert(ban_key(p.address));
  log_warn("torrent", name_ + ": banned " + p.address.to_string() + ": " + reason);
  close_peer(p, reason);
}

void Torrent::strike(const PeerAddress& address, const std::string& reason) {
  // Two strikes: a single violation may be a bug on either side and costs the peer only its connection; a second
  // one from the same address is deliberate or hopeless. The map is bounded so a crowd of one-off offenders
  // cannot grow it without limit (forgetting them only gives each a second chance).
  if (strikes_.size() >= 4096) strikes_.clear();
  const PeerAddress key = ban_key(address);
  if (++strikes_[key] < 2 || banned_.count(key)) return;
  banned_.insert(key);
  if (auto it = pool_.find(address); it != pool_.end()) it->second.banned = true;
  log_warn("torrent", name_ + ": banned " + address.to_string() + " after a second protocol violation: " + reason);
}

void Torrent::connect_now(const PeerAddress& address) {
  if (is_banned(address)) {
    log_info("torrent", name_ + ": not connecting to banned peer " + address.to_string());
    return;
  }
  auto& e = pool_[address];
  e.next_attempt = {};
  if (!e.connected) {
    e.connected = true;
    e.failures = 0;
    asio::ip::tcp::endpoint ep;
    if (address.v6) {
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), address.ip.data(), 16);
      ep = {asio::ip::address_v6(b), address.port};
    } else {
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), address.ip.data(), 4);
      ep = {asio::ip::address_v4(b), address.port};
    }
    auto conn = net::PeerConnection::outgoing(ctx_.io, ep, info_hash_, ctx_.connection, this);
    register_peer(conn, address);
    conn->start();
  }
}

void Torrent::adopt_incoming(std::shared_ptr<net::PeerConnection> connection) {
  const PeerAddress address = connection->remote_address();
  if (is_banned(address)) {
    connection->set_handler(nullptr);
    connection->close("banned");
    return;
  }
  register_peer(std::move(connection), address);
}

void Torrent::register_peer(std::shared_ptr<net::PeerConnection> connection, const PeerAddress& address) {
  auto peer = std::make_unique<Peer>();
  peer->address = address;
  peer->connected_order = ++connect_counter_;
  std::uint32_t slot = 0;  // the lowest free slot: slots index the picker's per-peer tables
  while (slot < peers_.size() && peers_[slot]) ++slot;
  if (slot == peers_.size()) peers_.emplace_back();
  peer->slot = slot;
  slot_of_[connection.get()] = slot;
  peer->conn = std::move(connection);
  peers_[slot] = std::move(peer);
}

void Torrent::connect_more() {
  if (stopping_ || state_ == TorrentState::stopped) return;
  const auto now = Clock::now();
  std::uint32_t open = peer_count();
  for (auto& [address, e] : pool_) {
    if (open >= options_.max_peers) break;
    if (e.connected || e.banned || e.next_attempt > now) continue;
    if (is_banned(address)) continue;
    if (ctx_.may_open_connection && !ctx_.may_open_connection()) break;
    connect_now(address);
    ++open;
  }
}

std::uint32_t Torrent::peer_count() const {
  std::uint32_t n = 0;
  for (const auto& p : peers_) n += (p != nullptr);
  return n;
}

Torrent::Peer* Torrent::peer_of(net::PeerConnection& c) {
  auto it = slot_of_.find(&c);
  if (it == slot_of_.end()) return nullptr;
  return peers_[it->second].get();
}

// ---- peers: handshake and messages ---------------------------------------------------------------------------

void Torrent::on_handshake(net::PeerConnection& c, const wire::Handshake& remote) {
  Peer* p = peer_of(c);
  if (!p) {
    c.close("unknown connection");
    return;
  }
  for (const auto& other : peers_) {
    if (other && other.get() != p && other->handshaken && other->id == remote.peer_id) {
      c.close("duplicate connection to the same peer");
      return;
    }
  }
  p->handshaken = true;
  p->id = remote.peer_id;
  if (metainfo_) c.set_piece_count(metainfo_->piece_count());
  if (c.remote_supports_extensions()) send_extension_handshake(*p);
  if (metainfo_) send_our_pieces(*p);
  else if (c.remote_supports_fast()) c.send_have_none();
  if (ctx_.config.dht && !is_private() && remote.reserved.dht()) c.send_port(ctx_.listen_port);
  if (picker_) {
    (void)picker_->add_peer(p->slot);
    p->in_picker = true;
  }
}

void Torrent::send_extension_handshake(Peer& p) {
  wire::ExtensionHandshake h;
  h.m["ut_metadata"] = wire::kOurUtMetadataId;
  if (!is_private()) h.m["ut_pex"] = wire::kOurUtPexId;
  h.m["lt_donthave"] = wire::kOurLtDonthaveId;
  h.client = "Playhead 0.1.0";
  h.listen_port = ctx_.listen_port;
  h.reqq = options_.max_upload_queue;
  if (metainfo_) h.metadata_size = metainfo_->info_bytes.size();
  if (state_ == TorrentState::seeding || state_ == TorrentState::paused || options_.seed_only) h.upload_only = true;
  const PeerAddress remote = p.conn->remote_address();
  h.yourip = remote;
  h.yourip->port = 0;
  p.conn->send_extended(0, wire::encode_extension_handshake(h));
}

void Torrent::send_our_pieces(Peer& p) {
  if (!metainfo_ || !store_) return;
  const std::uint32_t n = metainfo_->piece_count();
  std::uint32_t had = 0;
  for (PieceIndex i = 0; i < n; ++i) had += advertised_[i];
  const bool fast = p.conn->remote_supports_fast();
  if (had == n && fast) {
    p.conn->send_have_all();
  } else if (had == 0) {
    if (fast) p.conn->send_have_none();
  } else {
    std::vector<std::byte> bits((n + 7) / 8);
    for (PieceIndex i = 0; i < n; ++i) {
      if (advertised_[i]) bits[i / 8] |= std::byte(0x80 >> (i % 8));
    }
    p.conn->send_bitfield(bits);
  }
}

void Torrent::feed_picker_with_peer(Peer& p) {
  if (!picker_) return;
  if (!p.in_picker) {
    (void)picker_->add_peer(p.slot);
    p.in_picker = true;
  }
  const std::uint32_t n = metainfo_->piece_count();
  if (p.have_all) {
    picker_->peer_have_all(p.slot);
    p.seed = true;
  } else if (!p.bitfield.empty()) {
    if (p.bitfield.size() != (n + 7) / 8) {
      close_violator(p, "bitfield of the wrong size for this torrent");
      return;
    }
    picker_->peer_bitfield(p.slot, p.bitfield);
  }
  for (PieceIndex h : p.haves) {
    if (h < n) picker_->peer_have(p.slot, h);
  }
  p.bitfield.clear();
  p.bitfield.shrink_to_fit();
  p.haves.clear();
  if (!p.peer_choking) picker_->peer_unchoked(p.slot);
  update_interest(p);
}

void Torrent::on_message(net::PeerConnection& c, const wire::Message& m) {
  Peer* pp = peer_of(c);
  if (!pp) return;
  Peer& p = *pp;
  using K = wire::MessageKind;
  switch (m.kind) {
    case K::handshake:
    case K::keep_alive: break;
    case K::choke:
      p.peer_choking = true;
      if (picker_) picker_->peer_choked(p.slot);
      p.requests.clear();
      break;
    case K::unchoke:
      p.peer_choking = false;
      if (picker_) picker_->peer_unchoked(p.slot);
      fill_requests(p);
      break;
    case K::interested:
      p.peer_interested = true;
      // A free upload slot goes to the newcomer at once rather than at the next 10 s rechoke.
      {
        std::uint32_t unchoked = 0;
        for (const auto& o : peers_) unchoked += (o && !o->am_choking);
        if (p.am_choking && unchoked < Choker::kRegularSlots + 1 && store_) {
          p.am_choking = false;
          c.send_unchoke();
        }
      }
      break;
    case K::not_interested: p.peer_interested = false; break;
    case K::have:
      if (picker_) {
        picker_->peer_have(p.slot, m.piece);
        if (!p.am_interested) update_interest(p);
        fill_requests(p);
      } else if (p.haves.size() < 100000) {
        p.haves.push_back(m.piece);
      }
      break;
    case K::bitfield:
      p.bitfield.assign(reinterpret_cast<const std::uint8_t*>(m.payload.data()),
                        reinterpret_cast<const std::uint8_t*>(m.payload.data()) + m.payload.size());
      if (picker_) {
        feed_picker_with_peer(p);
        fill_requests(p);
      }
      break;
    case K::have_all:
      p.have_all = true;
      p.seed = true;
      if (picker_) {
        feed_picker_with_peer(p);
        fill_requests(p);
      }
      break;
    case K::have_none:
      p.have_none = true;
      if (picker_) picker_->peer_have_none(p.slot);
      break;
    case K::request: handle_request(p, m); break;
    case K::piece: handle_block(p, m); break;
    case K::cancel: {
      auto it = std::find(p.uploads.begin(), p.uploads.end(), BlockRequest{m.piece, m.offset, m.length});
      if (it != p.uploads.end()) p.uploads.erase(it);
      break;
    }
    case K::reject: {
      const BlockRequest b{m.piece, m.offset, m.length};
      auto it = std::find_if(p.requests.begin(), p.requests.end(), [&](const auto& r) { return r.block == b; });
      if (it != p.requests.end()) {
        p.requests.erase(it);
        if (picker_) picker_->block_rejected(p.slot, b);
      }
      break;
    }
    case K::port:
      if (ctx_.dht_node_seen && m.port != 0 && !is_private()) {
        PeerAddress a = p.conn->remote_address();
        a.port = m.port;
        ctx_.dht_node_seen(a);
      }
      break;
    case K::suggest:
    case K::allowed_fast: break;
    case K::extended: handle_extended(p, m); break;
  }
}

void Torrent::handle_extended(Peer& p, const wire::Message& m) {
  if (m.extended_id == 0) {
    auto h = wire::parse_extension_handshake(m.payload_view());
    if (!h) {
      close_violator(p, "bad extension handshake: " + h.error().message);
      return;
    }
    p.ext = std::move(h.value());
    p.ut_metadata = p.ext.id_of("ut_metadata");
    p.ut_pex = p.ext.id_of("ut_pex");
    p.lt_donthave = p.ext.id_of("lt_donthave");
    if (p.ext.reqq) p.reqq = std::clamp<std::uint32_t>(*p.ext.reqq, 1, options_.max_request_queue);
    if (p.ext.upload_only) p.upload_only = *p.ext.upload_only;
    if (p.ext.listen_port && !p.conn->is_outgoing()) {
      PeerAddress a = p.address;
      a.port = *p.ext.listen_port;
      if (a.port != 0) pool_.emplace(a, PoolEntry{}).first->second.connected = true;
    }
    if (!metainfo_) request_metadata(p);
    return;
  }
  if (m.extended_id == wire::kOurUtMetadataId) {
    handle_metadata_message(p, m.payload_view());
  } else if (m.extended_id == wire::kOurUtPexId) {
    handle_pex(p, m.payload_view());
  } else if (m.extended_id == wire::kOurLtDonthaveId) {
    // The peer dropped a piece it had announced (a memory-only peer like us): stop expecting it from there.
    auto piece = wire::parse_donthave(m.payload_view());
    if (!piece) {
      close_violator(p, "bad lt_donthave message: " + piece.error().message);
    } else if (picker_ && *piece < metainfo_->piece_count()) {
      picker_->peer_dont_have(p.slot, *piece);
      p.requests.erase(std::remove_if(p.requests.begin(), p.requests.end(),
                                      [&](const auto& r) { return r.block.piece == *piece; }),
                       p.requests.end());
    }
  }
}

}  // namespace ph::engine
