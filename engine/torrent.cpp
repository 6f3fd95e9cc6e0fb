#include "engine/torrent.hpp"

#include <algorithm>
#include <cstring>

#include "engine/log.hpp"
#include "storage/disk_store.hpp"
#include "storage/memory_store.hpp"

namespace ph::engine {

using Clock = std::chrono::steady_clock;

const char* state_name(TorrentState s) {
  switch (s) {
    case TorrentState::metadata: return "metadata";
    case TorrentState::downloading: return "downloading";
    case TorrentState::paused: return "paused";
    case TorrentState::seeding: return "seeding";
    case TorrentState::stopped: return "stopped";
  }
  return "?";
}

struct Torrent::Peer {
  std::shared_ptr<net::PeerConnection> conn;
  std::uint32_t slot = 0;
  PeerAddress address;  // where we reach it (outgoing) or where it came from (incoming)
  bool handshaken = false;
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool seed = false;
  bool in_picker = false;
  bool upload_only = false;
  std::uint64_t connected_order = 0;
  PeerId id;
  wire::ExtensionHandshake ext;
  std::uint8_t ut_metadata = 0, ut_pex = 0, lt_donthave = 0;
  std::uint32_t reqq = 250;
  // Piece knowledge received before the metadata (magnets) is replayed into the picker once it is known.
  std::vector<std::uint8_t> bitfield;
  bool have_all = false;
  bool have_none = false;
  std::vector<PieceIndex> haves;
  struct InFlight {
    BlockRequest block;
    Clock::time_point sent;
  };
  std::vector<InFlight> requests;
  std::deque<BlockRequest> uploads;
  bool serving = false;
  std::uint32_t metadata_outstanding = 0;
  std::set<PeerAddress> pex_sent;
  Clock::time_point last_block{};
};

// ---- construction --------------------------------------------------------------------------------------------

Torrent::Torrent(TorrentContext ctx, Metainfo metainfo, TorrentOptions options)
    : ctx_(std::move(ctx)),
      options_(options),
      info_hash_(metainfo.info_hash),
      name_(metainfo.name),
      trackers_(metainfo.trackers),
      tick_timer_(ctx_.io) {
  metainfo_ = std::move(metainfo);
}

Torrent::Torrent(TorrentContext ctx, InfoHash info_hash, std::string display_name,
                 std::vector<std::vector<std::string>> trackers, TorrentOptions options)
    : ctx_(std::move(ctx)),
      options_(options),
      info_hash_(info_hash),
      name_(display_name.empty() ? info_hash.hex() : std::move(display_name)),
      trackers_(std::move(trackers)),
      tick_timer_(ctx_.io) {}

Torrent::~Torrent() {
  for (auto& p : peers_) {
    if (p && p->conn) {
      p->conn->set_handler(nullptr);
      p->conn->close("torrent removed");
    }
  }
  for (FileReader* r : readers_) r->torrent_ = nullptr;
}

void Torrent::start() {
  if (started_) return;
  started_ = true;
  if (metainfo_) init_with_metadata();
  if (!trackers_.empty()) {
    announcer_ = std::make_unique<Announcer>(
        ctx_.io, trackers_, info_hash_, ctx_.peer_id, ctx_.listen_port,
        [this] {
          AnnounceStats s;
          s.uploaded = counters_.uploaded;
          s.downloaded = counters_.downloaded;
          std::uint64_t left = metainfo_ ? metainfo_->total_length : 0;
          if (picker_ && metainfo_) {
            const auto had = picker_->stats().pieces_had;
            left = had >= metainfo_->piece_count() ? 0 : (metainfo_->piece_count() - had) * std::uint64_t{metainfo_->piece_length};
          }
          s.left = options_.seed_only ? 0 : left;
          return s;
        },
        [this](std::vector<PeerAddress> peers) { add_peers(peers, "tracker"); });
    announcer_->start();
  }
  if (ctx_.dht_announce && !is_private()) ctx_.dht_announce(info_hash_, true);
  dht_lookup();
  arm_tick();
}

void Torrent::dht_lookup() {
  // Private torrents (BEP 27) never use the DHT. While the metadata is unknown we cannot tell, so a magnet looks up
  // (a magnet has no `private` flag to honour yet).
  if (!ctx_.dht_get_peers || is_private() || stopping_) return;
  last_dht_lookup_ = Clock::now();
  std::weak_ptr<char> alive = alive_;
  ctx_.dht_get_peers(info_hash_, [this, alive](std::vector<PeerAddress> peers) {
    if (!alive.expired() && !stopping_) add_peers(peers, "dht");
  });
}

void Torrent::stop(std::chrono::milliseconds deadline, std::function<void()> done) {
  stopping_ = true;
  if (ctx_.dht_announce && started_) ctx_.dht_announce(info_hash_, false);
  tick_timer_.cancel();
  for (auto& p : peers_) {
    if (p && p->conn) p->conn->close("torrent stopped");
  }
  set_state(TorrentState::stopped);
  if (announcer_) {
    announcer_->stop(deadline, std::move(done));
  } else {
    asio::post(ctx_.io, std::move(done));
  }
}

void Torrent::set_state(TorrentState s) {
  if (state_ == s) return;
  state_ = s;
}

void Torrent::on_metadata(std::function<void()> f) {
  if (metainfo_) {
    asio::post(ctx_.io, std::move(f));
  } else {
    metadata_waiters_.push_back(std::move(f));
  }
}

void Torrent::init_with_metadata() {
  const Metainfo& m = *metainfo_;
  name_ = m.name;
  if (m.is_private && ctx_.dht_announce && started_) ctx_.dht_announce(info_hash_, false);
  if (trackers_.empty()) trackers_ = m.trackers;
  file_priority_.assign(m.files.size(), 1);
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    if (m.files[i].pad) file_priority_[i] = 0;
  }
  advertised_.assign(m.piece_count(), 0);

  PickerConfig pc = picker_config_from(m);
  pc.disk_mode = ctx_.config.storage_mode == StorageMode::disk;
  pc.readahead_bytes = ctx_.config.readahead;
  auto picker = Picker::create(pc);
  if (!picker) {
    log_warn("torrent", name_ + ": picker refused the torrent: " + picker.error().message);
    set_state(TorrentState::stopped);
    return;
  }
  picker_.emplace(std::move(picker.value()));
  if (options_.seed_only || user_paused_) picker_->pause();

  start_store();
  set_state(user_paused_ ? TorrentState::paused : TorrentState::downloading);

  for (auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    p->conn->set_piece_count(m.piece_count());
    feed_picker_with_peer(*p);
    send_our_pieces(*p);
  }
  auto waiters = std::move(metadata_waiters_);
  for (auto& w : waiters) asio::post(ctx_.io, std::move(w));
}

void Torrent::start_store() {
  const Metainfo& m = *metainfo_;
  if (ctx_.config.storage_mode == StorageMode::disk || options_.seed_only) {
    auto store = storage::DiskStore::create(ctx_.arena, ctx_.hasher, m, ctx_.config.download_dir);
    if (!store) {
      log_warn("torrent", name_ + ": " + store.error().message);
      set_state(TorrentState::stopped);
      return;
    }
    auto* disk = store.value().get();
    store_ = std::move(store.value());
    std::weak_ptr<char> alive = alive_;
    disk->recheck([this, alive](std::uint32_t had) {
      if (alive.expired()) return;
      for (PieceIndex p = 0; p < metainfo_->piece_count(); ++p) {
        if (store_->has(p)) {
          picker_->piece_verified(p);
          advertised_[p] = 1;
        }
      }
      if (had > 0) log_info("torrent", name_ + ": " + std::to_string(had) + " pieces already on disk");
      for (auto& peer : peers_) {
        if (peer && peer->handshaken) {
          for (PieceIndex p = 0; p < metainfo_->piece_count(); ++p) {
            if (advertised_[p]) peer->conn->send_have(p);
          }
        }
      }
      if (picker_->stats().pieces_had == metainfo_->piece_count()) set_state(TorrentState::seeding);
      fill_all_requests();
    });
  } else {
    auto store = storage::MemoryStore::create(ctx_.arena, ctx_.hasher, m);
    if (!store) {
      log_warn("torrent", name_ + ": " + store.error().message);
      set_state(TorrentState::stopped);
      return;
    }
    store_ = std::move(store.value());
  }
  std::weak_ptr<char> alive = alive_;
  store_->set_evicted_handler([this, alive](PieceIndex p) {
    if (!alive.expired()) on_piece_evicted(p);
  });
}

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
    auto peer = std::make_unique<Peer>();
    peer->conn = conn;
    peer->address = address;
    peer->connected_order = ++connect_counter_;
    std::uint32_t slot = 0;
    while (slot < peers_.size() && peers_[slot]) ++slot;
    if (slot == peers_.size()) peers_.emplace_back();
    peer->slot = slot;
    slot_of_[conn.get()] = slot;
    peers_[slot] = std::move(peer);
    conn->start();
  }
}

void Torrent::adopt_incoming(std::shared_ptr<net::PeerConnection> connection) {
  auto peer = std::make_unique<Peer>();
  peer->address = connection->remote_address();
  if (is_banned(peer->address)) {
    connection->set_handler(nullptr);
    connection->close("banned");
    return;
  }
  peer->conn = connection;
  peer->connected_order = ++connect_counter_;
  std::uint32_t slot = 0;
  while (slot < peers_.size() && peers_[slot]) ++slot;
  if (slot == peers_.size()) peers_.emplace_back();
  peer->slot = slot;
  slot_of_[connection.get()] = slot;
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
      close_peer(p, "bitfield of the wrong size for this torrent");
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
      close_peer(p, "bad extension handshake: " + h.error().message);
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
    // A peer dropped a piece. The picker has no per-peer "lost" event yet; the request for it would be rejected.
    (void)wire::parse_donthave(m.payload_view());
  }
}

// ---- metadata (BEP 9) ----------------------------------------------------------------------------------------

void Torrent::request_metadata(Peer& p) {
  if (metainfo_ || p.ut_metadata == 0 || !p.ext.metadata_size) return;
  if (!metadata_.started()) {
    auto r = metadata_.reset(*p.ext.metadata_size);
    if (!r) {
      close_peer(p, "unusable metadata_size: " + r.error().message);
      return;
    }
  }
  if (metadata_.total_size() != *p.ext.metadata_size) return;  // disagrees with the peer we are assembling from
  // Ask this peer for every missing piece (metadata is small: a few pieces), at most 8 at a time.
  for (std::uint32_t i = 0; i < metadata_.piece_count() && p.metadata_outstanding < 8; ++i) {
    p.conn->send_extended(p.ut_metadata, wire::encode_metadata_request(i));
    ++p.metadata_outstanding;
  }
}

void Torrent::handle_metadata_message(Peer& p, std::string_view payload) {
  auto msg = wire::parse_metadata_message(payload);
  if (!msg) {
    close_peer(p, "bad ut_metadata message: " + msg.error().message);
    return;
  }
  switch (msg->type) {
    case wire::MetadataMsgType::request: {
      if (p.ut_metadata == 0) return;
      if (!metainfo_) {
        p.conn->send_extended(p.ut_metadata, wire::encode_metadata_reject(msg->piece));
        return;
      }
      const std::string& info = metainfo_->info_bytes;
      const std::uint64_t start = std::uint64_t{msg->piece} * wire::kMetadataPieceSize;
      if (start >= info.size()) {
        p.conn->send_extended(p.ut_metadata, wire::encode_metadata_reject(msg->piece));
        return;
      }
      const auto len = std::min<std::uint64_t>(wire::kMetadataPieceSize, info.size() - start);
      p.conn->send_extended(p.ut_metadata, wire::encode_metadata_data(msg->piece, info.size(),
                                                                      std::string_view(info).substr(start, len)));
      return;
    }
    case wire::MetadataMsgType::reject:
      if (p.metadata_outstanding > 0) --p.metadata_outstanding;
      return;
    case wire::MetadataMsgType::data: break;
  }
  if (p.metadata_outstanding > 0) --p.metadata_outstanding;
  if (metainfo_ || !metadata_.started()) return;
  auto added = metadata_.add(*msg);
  if (!added) {
    close_peer(p, "bad ut_metadata data: " + added.error().message);
    return;
  }
  if (!metadata_.complete()) return;
  auto info = metadata_.verify(info_hash_);
  if (!info) {
    ban(p, "metadata does not hash to the info-hash");
    return;
  }
  auto parsed = parse_info_dict(info.value());
  if (!parsed) {
    log_warn("torrent", info_hash_.hex() + ": metadata is not a usable info dictionary: " + parsed.error().message);
    ban(p, "unusable metadata");
    return;
  }
  Metainfo m = std::move(parsed.value());
  m.trackers = trackers_;
  metainfo_ = std::move(m);
  log_info("torrent", "Metadata received for " + metainfo_->name + " (" + std::to_string(metainfo_->files.size()) +
                          " files, " + std::to_string(metainfo_->total_length) + " bytes)");
  init_with_metadata();
  fill_all_requests();
}

void Torrent::handle_pex(Peer& p, std::string_view payload) {
  if (is_private()) return;
  auto msg = wire::parse_pex(payload);
  if (!msg) {
    close_peer(p, "bad ut_pex message: " + msg.error().message);
    return;
  }
  std::vector<PeerAddress> addresses;
  for (const auto& a : msg->added) addresses.push_back(a.address);
  add_peers(addresses, "pex");
}

void Torrent::send_pex() {
  if (is_private()) return;
  std::set<PeerAddress> connected;
  for (const auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    PeerAddress a = p->address;
    if (!p->conn->is_outgoing()) {
      if (!p->ext.listen_port || *p->ext.listen_port == 0) continue;
      a.port = *p->ext.listen_port;
    }
    connected.insert(a);
  }
  for (auto& p : peers_) {
    if (!p || !p->handshaken || p->ut_pex == 0) continue;
    wire::PexMessage msg;
    for (const auto& a : connected) {
      if (msg.added.size() >= 50) break;
      if (a == p->address || p->pex_sent.count(a)) continue;
      msg.added.push_back({a, 0});
    }
    for (auto it = p->pex_sent.begin(); it != p->pex_sent.end();) {
      if (!connected.count(*it) && msg.dropped.size() < 50) {
        msg.dropped.push_back(*it);
        it = p->pex_sent.erase(it);
      } else {
        ++it;
      }
    }
    if (msg.added.empty() && msg.dropped.empty()) continue;
    for (const auto& a : msg.added) p->pex_sent.insert(a.address);
    p->conn->send_extended(p->ut_pex, wire::encode_pex(msg));
  }
}

// ---- downloading ---------------------------------------------------------------------------------------------

bool Torrent::wants_pieces() const {
  return picker_ && !options_.seed_only && state_ != TorrentState::stopped && !picker_->paused();
}

void Torrent::update_interest(Peer& p) {
  if (!picker_ || !p.handshaken) return;
  bool interested = false;
  if (wants_pieces()) {
    const std::uint32_t n = metainfo_->piece_count();
    // Interested when the peer has a selected piece we lack. O(pieces) but only on bitfield/have-all or a state
    // change; `have` messages only ever turn interest on.
    for (PieceIndex i = 0; i < n && !interested; ++i) {
      if (picker_->piece_selected(i) && !picker_->have_piece(i)) {
        interested = p.seed || picker_->availability(i) > 0;
      }
    }
  }
  if (interested != p.am_interested) {
    p.am_interested = interested;
    if (interested) p.conn->send_interested();
    else p.conn->send_not_interested();
  }
}

std::uint32_t Torrent::target_queue(const Peer& p) const {
  // Enough requests to cover about two seconds at the measured rate (the bandwidth-delay product on any sane
  // link), never fewer than 8 and never more than the peer accepts.
  const double rate = p.conn->download_rate();
  const auto by_rate = static_cast<std::uint32_t>(rate * 2.0 / kBlockSize) + 8;
  return std::min<std::uint32_t>(std::max<std::uint32_t>(by_rate, 16), std::min(p.reqq, options_.max_request_queue));
}

void Torrent::update_budget() {
  if (!picker_) return;
  // Room for pieces not started yet: the arena minus what is pinned (pieces being assembled, pieces being read or
  // sent) minus pieces the picker has started that hold no arena room yet, minus a reserve so that pieces already
  // started can always finish. Unpinned cached pieces count as room: they are evicted when needed.
  const auto arena = ctx_.arena.stats();
  const std::uint64_t piece_length = metainfo_->piece_length;
  const auto st = store_ ? store_->stats() : storage::StoreStats{};
  const std::uint64_t started = picker_->stats().pieces_in_progress;
  const std::uint64_t unassembled = started > st.assembling ? (started - st.assembling) * piece_length : 0;
  const std::uint64_t committed = arena.pinned_bytes + unassembled + 2 * piece_length;
  picker_->set_budget(arena.capacity_bytes > committed ? arena.capacity_bytes - committed : 0);
}

void Torrent::fill_requests(Peer& p) {
  if (!wants_pieces() || !p.handshaken || p.peer_choking || !p.conn->is_open()) return;
  if (!p.am_interested) {
    update_interest(p);
    if (!p.am_interested) return;
  }
  const std::uint32_t target = target_queue(p);
  if (p.requests.size() >= target) return;
  update_budget();
  picker_->peer_rate(p.slot, p.conn->download_rate());
  pick_scratch_.clear();
  picker_->pick(p.slot, target - static_cast<std::uint32_t>(p.requests.size()), Clock::now(), pick_scratch_);
  const auto now = Clock::now();
  for (const auto& b : pick_scratch_) {
    p.conn->send_request(b.piece, b.offset, b.length);
    p.requests.push_back({b, now});
  }
  send_cancellations();
}

void Torrent::fill_all_requests() {
  for (auto& p : peers_) {
    if (p) fill_requests(*p);
  }
}

void Torrent::send_cancellations() {
  if (!picker_) return;
  for (const auto& c : picker_->take_cancellations()) {
    if (c.peer >= peers_.size() || !peers_[c.peer]) continue;
    Peer& p = *peers_[c.peer];
    auto it = std::find_if(p.requests.begin(), p.requests.end(), [&](const auto& r) { return r.block == c.block; });
    if (it != p.requests.end()) {
      p.requests.erase(it);
      p.conn->send_cancel(c.block.piece, c.block.offset, c.block.length);
    }
  }
}

void Torrent::handle_block(Peer& p, const wire::Message& m) {
  const BlockRequest b{m.piece, m.offset, m.length};
  auto it = std::find_if(p.requests.begin(), p.requests.end(), [&](const auto& r) { return r.block == b; });
  if (it != p.requests.end()) p.requests.erase(it);
  p.last_block = Clock::now();
  counters_.downloaded += m.length;
  if (!picker_ || !store_) {
    counters_.wasted += m.length;
    return;
  }
  const BlockOutcome outcome = picker_->block_received(p.slot, b);
  if (outcome == BlockOutcome::duplicate || outcome == BlockOutcome::unwanted) {
    counters_.wasted += m.length;
    send_cancellations();
    fill_requests(p);
    return;
  }
  if (!store_->assembling(m.piece)) {
    auto begun = store_->begin_piece(m.piece);
    if (!begun) {
      // No room (every byte pinned): drop the block, the picker asks again later.
      counters_.wasted += m.length;
      picker_->piece_evicted(m.piece);
      return;
    }
  }
  auto written = store_->write_block(m.piece, m.offset, m.payload, p.slot);
  if (!written) {
    close_peer(p, "bad block: " + written.error().message);
    return;
  }
  if (written.value() || outcome == BlockOutcome::piece_complete) {
    std::weak_ptr<char> alive = alive_;
    auto submitted = store_->submit_piece(m.piece, [this, alive](const storage::VerifyResult& r) {
      if (!alive.expired()) on_piece_verified(r);
    });
    if (!submitted) log_warn("torrent", name_ + ": piece " + std::to_string(m.piece) + ": " + submitted.error().message);
  }
  send_cancellations();
  fill_requests(p);
}

void Torrent::on_piece_verified(const storage::VerifyResult& r) {
  if (!picker_) return;
  if (!r.ok()) {
    picker_->piece_failed(r.piece);
    ++counters_.hash_failures;
    log_warn("torrent", name_ + ": piece " + std::to_string(r.piece) + " failed its hash check" +
                            (r.error.empty() ? "" : ": " + r.error));
    // A peer that sent every block of a bad piece is certainly guilty and banned at once; when several peers
    // contributed, each is suspected and banned on its second failed piece.
    const bool sole = r.sources.size() == 1;
    for (std::uint32_t slot : r.sources) {
      if (slot < peers_.size() && peers_[slot]) {
        Peer& bad = *peers_[slot];
        if (++pool_[bad.address].hash_failures >= 2 || sole) ban(bad, "sent data that failed the hash check");
      }
    }
    fill_all_requests();
    return;
  }
  picker_->piece_verified(r.piece);
  advertised_[r.piece] = 1;
  for (auto& p : peers_) {
    if (p && p->handshaken) p->conn->send_have(r.piece);
  }
  wake_readers(r.piece);
  if (!options_.seed_only && picker_->stats().pieces_had == metainfo_->piece_count()) {
    set_state(TorrentState::seeding);
    log_info("torrent", name_ + ": download complete, seeding");
    if (announcer_) announcer_->completed();
    for (auto& p : peers_) {
      if (p) update_interest(*p);
    }
  }
  send_cancellations();
  fill_all_requests();
}

void Torrent::on_piece_evicted(PieceIndex piece) {
  if (!picker_) return;
  picker_->piece_evicted(piece);
  if (piece < advertised_.size() && advertised_[piece]) {
    advertised_[piece] = 0;
    for (auto& p : peers_) {
      if (p && p->handshaken && p->lt_donthave) p->conn->send_extended(p->lt_donthave, wire::encode_donthave(piece));
    }
  }
}

void Torrent::ban(Peer& p, const std::string& reason) {
  auto& e = pool_[p.address];
  e.banned = true;
  banned_.insert(ban_key(p.address));
  log_warn("torrent", name_ + ": banned " + p.address.to_string() + ": " + reason);
  close_peer(p, reason);
}

// ---- uploading -----------------------------------------------------------------------------------------------

void Torrent::handle_request(Peer& p, const wire::Message& m) {
  const bool fast = p.conn->remote_supports_fast();
  auto reject = [&] {
    if (fast) p.conn->send_reject(m.piece, m.offset, m.length);
  };
  if (!metainfo_ || !store_ || p.am_choking) return reject();
  if (m.length == 0 || m.length > 128 * 1024 || m.piece >= metainfo_->piece_count() ||
      std::uint64_t{m.offset} + m.length > metainfo_->piece_size(m.piece)) {
    close_peer(p, "request outside the piece");
    return;
  }
  if (!advertised_[m.piece] || !store_->has(m.piece)) return reject();
  if (p.uploads.size() >= options_.max_upload_queue) return reject();
  p.uploads.push_back({m.piece, m.offset, m.length});
  serve_uploads(p);
}

void Torrent::serve_uploads(Peer& p) {
  if (p.serving) return;
  while (!p.uploads.empty() && p.conn->is_open() && p.conn->bytes_queued() < (1u << 20)) {
    const BlockRequest b = p.uploads.front();
    auto view = store_ ? store_->try_view(b.piece) : std::nullopt;
    if (!view) {
      if (store_ && store_->has(b.piece)) {
        // Disk mode: the piece is on disk but not cached; load it and come back.
        p.serving = true;
        std::weak_ptr<char> alive = alive_;
        const std::uint32_t slot = p.slot;
        auto conn = p.conn;
        store_->read_piece(b.piece, [this, alive, slot, conn](Result<storage::PieceView> r) {
          if (alive.expired() || slot >= peers_.size() || !peers_[slot] || peers_[slot]->conn != conn) return;
          Peer& peer = *peers_[slot];
          peer.serving = false;
          if (!r && !peer.uploads.empty()) {
            const BlockRequest front = peer.uploads.front();
            peer.uploads.pop_front();
            if (peer.conn->remote_supports_fast()) peer.conn->send_reject(front.piece, front.offset, front.length);
          }
          serve_uploads(peer);
        });
        return;
      }
      p.uploads.pop_front();
      if (p.conn->remote_supports_fast()) p.conn->send_reject(b.piece, b.offset, b.length);
      continue;
    }
    p.uploads.pop_front();
    // A block spans at most a couple of 16 KiB arena blocks; copy it into one contiguous message.
    thread_local std::vector<std::byte> block;
    block.resize(b.length);
    const std::size_t n = view->copy_to(b.offset, block);
    if (n != b.length) continue;
    if (p.conn->send_piece(b.piece, b.offset, block)) counters_.uploaded += b.length;
  }
}

void Torrent::on_send_drained(net::PeerConnection& c) {
  if (Peer* p = peer_of(c)) serve_uploads(*p);
}

// ---- peers going away ----------------------------------------------------------------------------------------

void Torrent::drop_peer_requests(Peer& p) {
  p.requests.clear();
  if (picker_ && p.in_picker) {
    picker_->remove_peer(p.slot);
    p.in_picker = false;
  }
}

void Torrent::close_peer(Peer& p, const std::string& reason) {
  log_debug("torrent", name_ + ": closing " + p.address.to_string() + ": " + reason);
  p.conn->close(reason);  // on_closed follows and cleans up
}

void Torrent::on_closed(net::PeerConnection& c, const std::string& reason) {
  auto it = slot_of_.find(&c);
  if (it == slot_of_.end()) return;
  const std::uint32_t slot = it->second;
  slot_of_.erase(it);
  std::unique_ptr<Peer> p = std::move(peers_[slot]);
  if (!p) return;
  log_debug("torrent", name_ + ": peer " + p->address.to_string() + " closed: " + reason);
  drop_peer_requests(*p);
  auto pe = pool_.find(p->address);
  if (pe != pool_.end()) {
    auto& e = pe->second;
    e.connected = false;
    if (!p->handshaken) ++e.failures;
    else e.failures = 0;
    const auto backoff = std::chrono::seconds(std::min<unsigned>(600, 5u << std::min(e.failures, 7u)));
    e.next_attempt = Clock::now() + backoff;
  }
  c.set_handler(nullptr);
  fill_all_requests();
}

// ---- periodic work -------------------------------------------------------------------------------------------

void Torrent::arm_tick() {
  tick_timer_.expires_after(std::chrono::seconds(1));
  std::weak_ptr<char> alive = alive_;
  tick_timer_.async_wait([this, alive](const asio::error_code& ec) {
    if (ec || alive.expired() || stopping_) return;
    tick();
    arm_tick();
  });
}

void Torrent::tick() {
  const auto now = Clock::now();
  if (picker_) {
    for (auto& p : peers_) {
      if (!p || !p->in_picker) continue;
      picker_->peer_rate(p->slot, p->conn->download_rate());
      // Requests that took too long go back to the picker (which may give them to someone else).
      for (auto it = p->requests.begin(); it != p->requests.end();) {
        if (now - it->sent > options_.request_timeout) {
          picker_->request_timed_out(p->slot, it->block);
          it = p->requests.erase(it);
        } else {
          ++it;
        }
      }
    }
    send_cancellations();
  }
  if (now - last_rechoke_ >= Choker::kRechokeInterval) {
    last_rechoke_ = now;
    rechoke();
  }
  if (now - last_pex_ >= std::chrono::seconds(60)) {
    last_pex_ = now;
    send_pex();
  }
  // Look for more peers through the DHT every 5 minutes, or every 15 s while we have none to talk to.
  const bool starving = peer_count() == 0;
  if (now - last_dht_lookup_ >= (starving ? std::chrono::seconds(15) : std::chrono::seconds(300))) dht_lookup();
  connect_more();
  fill_all_requests();
}

void Torrent::rechoke() {
  std::vector<ChokeCandidate> candidates;
  for (const auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    candidates.push_back({p->slot, p->peer_interested, p->seed || p->upload_only, p->conn->download_rate(),
                          p->conn->upload_rate(), p->connected_order});
  }
  const auto unchoke = choker_.rechoke(candidates, state_ == TorrentState::seeding || options_.seed_only, Clock::now());
  for (auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    const bool should = std::find(unchoke.begin(), unchoke.end(), p->slot) != unchoke.end();
    if (should && p->am_choking) {
      p->am_choking = false;
      p->conn->send_unchoke();
    } else if (!should && !p->am_choking) {
      p->am_choking = true;
      p->conn->send_choke();
      // Requests queued before the choke are void (BEP 6 peers get explicit rejects).
      if (p->conn->remote_supports_fast()) {
        for (const auto& b : p->uploads) p->conn->send_reject(b.piece, b.offset, b.length);
      }
      p->uploads.clear();
    }
  }
}

// ---- pause and selection -------------------------------------------------------------------------------------

void Torrent::pause() {
  user_paused_ = true;
  if (!picker_) {
    set_state(TorrentState::paused);
    return;
  }
  picker_->pause();
  send_cancellations();
  for (auto& p : peers_) {
    if (!p) continue;
    // The picker cancelled what it knew of; whatever is left is cancelled here so nothing more is asked for.
    for (const auto& r : p->requests) p->conn->send_cancel(r.block.piece, r.block.offset, r.block.length);
    p->requests.clear();
    update_interest(*p);
  }
  if (state_ != TorrentState::seeding) set_state(TorrentState::paused);
  log_info("torrent", "Paused torrent download: " + name_);
}

void Torrent::resume() {
  user_paused_ = false;
  if (picker_ && !options_.seed_only) picker_->resume();
  if (state_ == TorrentState::paused) set_state(picker_ ? TorrentState::downloading : TorrentState::metadata);
  log_info("torrent", "Resumed torrent download: " + name_);
  for (auto& p : peers_) {
    if (p) update_interest(*p);
  }
  fill_all_requests();
}

Result<void> Torrent::prioritize_file(FileIndex file) {
  if (!metainfo_ || !picker_) return make_error("metadata not known yet");
  if (file >= metainfo_->files.size()) return make_error("no such file");
  if (metainfo_->files[file].pad) return make_error("padding files cannot be selected");
  picker_->select_only(file);
  for (std::size_t i = 0; i < file_priority_.size(); ++i) file_priority_[i] = (i == file) ? 1 : 0;
  log_info("torrent", "Prioritizing file for streaming: " + metainfo_->files[file].path_string());
  for (auto& p : peers_) {
    if (p) update_interest(*p);
  }
  fill_all_requests();
  return {};
}

// ---- queries -------------------------------------------------------------------------------------------------

double Torrent::download_rate() const {
  double r = 0;
  for (const auto& p : peers_) r += p ? p->conn->download_rate() : 0;
  return r;
}

double Torrent::upload_rate() const {
  double r = 0;
  for (const auto& p : peers_) r += p ? p->conn->upload_rate() : 0;
  return r;
}

std::vector<PeerSummary> Torrent::peer_summaries() const {
  std::vector<PeerSummary> out;
  for (const auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    out.push_back({p->address, p->ext.client, p->conn->download_rate(), p->conn->upload_rate(), p->seed});
  }
  return out;
}

bool Torrent::have_piece(PieceIndex p) const { return store_ && store_->has(p); }

double Torrent::progress() const {
  if (!metainfo_ || !picker_) return 0;
  std::uint64_t want = 0, had = 0;
  for (PieceIndex p = 0; p < metainfo_->piece_count(); ++p) {
    if (!picker_->piece_selected(p)) continue;
    ++want;
    had += store_ && store_->has(p);
  }
  return want == 0 ? 1.0 : double(had) / double(want);
}

double Torrent::file_progress(FileIndex f) const {
  if (!metainfo_ || !store_ || f >= metainfo_->files.size()) return 0;
  const auto range = store_->layout().pieces_of_file(f);
  if (range.empty()) return 1.0;
  std::uint32_t had = 0;
  for (PieceIndex p = range.first; p < range.end; ++p) had += store_->has(p);
  return double(had) / range.size();
}

std::vector<std::pair<FileIndex, std::uint64_t>> Torrent::playheads() const {
  std::vector<std::pair<FileIndex, std::uint64_t>> out;
  for (const FileReader* r : readers_) out.emplace_back(r->file_, r->position_);
  return out;
}

std::vector<TrackerStatus> Torrent::tracker_status() const {
  return announcer_ ? announcer_->status() : std::vector<TrackerStatus>{};
}

// ---- readers -------------------------------------------------------------------------------------------------

Result<std::unique_ptr<FileReader>> Torrent::open_reader(FileIndex file) {
  if (!metainfo_ || !store_) return make_error("metadata not known yet");
  if (file >= metainfo_->files.size()) return make_error("no such file");
  const FileEntry& f = metainfo_->files[file];
  if (f.pad) return make_error("padding files cannot be streamed");
  // Streaming a file selects it (without deselecting others: several viewers may watch several files).
  if (file_priority_[file] == 0) {
    file_priority_[file] = 1;
    picker_->set_file_priority(file, 1);
  }
  log_info("torrent", "Prioritizing file for streaming: " + f.path_string());
  auto r = std::unique_ptr<FileReader>(new FileReader(*this, next_reader_id_++, file, f.offset, f.length, f.path_string()));
  readers_.push_back(r.get());
  return r;
}

void Torrent::reader_closed(FileReader& r) {
  readers_.erase(std::remove(readers_.begin(), readers_.end(), &r), readers_.end());
  if (picker_) picker_->remove_playhead(r.id_);
  send_cancellations();
}

void Torrent::move_playhead(FileReader& r, std::uint64_t offset_in_file) {
  if (!picker_) return;
  const bool start = !r.started_;
  r.started_ = true;
  const std::uint64_t before = r.position_;
  r.position_ = offset_in_file;
  (void)picker_->set_playhead_in_file(r.id_, r.file_, offset_in_file, r.rate_, start);
  // Pieces wholly behind this reader are the first to go when memory is needed (unless another reader needs them).
  if (offset_in_file > before && store_) {
    const std::uint32_t pl = metainfo_->piece_length;
    const PieceIndex from = static_cast<PieceIndex>((r.file_offset_ + before) / pl);
    const PieceIndex to = static_cast<PieceIndex>((r.file_offset_ + offset_in_file) / pl);
    for (PieceIndex p = from; p < to; ++p) {
      if (!picker_->in_any_window(p)) store_->hint_behind(p, true);
    }
  }
  send_cancellations();
  fill_all_requests();
}

void Torrent::wake_readers(PieceIndex piece) {
  // Copy: completing a read may close readers.
  auto readers = readers_;
  for (FileReader* r : readers) {
    if (!r->pending_) continue;
    const PieceIndex want = static_cast<PieceIndex>((r->file_offset_ + r->want_offset_) / metainfo_->piece_length);
    if (want == piece) reader_read(*r);
  }
}

void Torrent::reader_read(FileReader& r) {
  if (!r.pending_ || !store_) return;
  const std::uint64_t abs = r.file_offset_ + r.want_offset_;
  const auto piece = static_cast<PieceIndex>(abs / metainfo_->piece_length);
  const auto in_piece = static_cast<std::uint32_t>(abs - std::uint64_t{piece} * metainfo_->piece_length);
  auto complete = [this, &r, in_piece](storage::PieceView view) {
    const std::uint64_t left_in_file = r.length_ - r.want_offset_;
    const std::uint32_t avail = view.size() - in_piece;
    std::uint32_t len = static_cast<std::uint32_t>(std::min<std::uint64_t>({r.want_len_, left_in_file, avail}));
    // One contiguous segment (the arena's 16 KiB blocks are not contiguous with each other).
    std::span<const std::byte> span;
    view.for_each_segment(in_piece, len, [&](std::span<const std::byte> s) {
      if (span.empty()) span = s;
    });
    r.view_ = std::move(view);
    r.pending_ = false;
    r.counted_stall_ = false;
    r.rate_bytes_ += span.size();
    auto handler = std::move(r.handler_);
    std::weak_ptr<char> alive = r.alive_;
    asio::post(ctx_.io, [handler = std::move(handler), span, alive] {
      if (!alive.expired()) handler(span);
    });
  };
  if (auto view = store_->try_view(piece)) {
    complete(std::move(*view));
    return;
  }
  if (store_->has(piece)) {
    // Disk mode: on disk, not cached.
    std::weak_ptr<char> alive = r.alive_;
    FileReader* rp = &r;
    store_->read_piece(piece, [this, alive, rp, complete](Result<storage::PieceView> v) {
      if (alive.expired() || !rp->pending_) return;
      if (v) complete(std::move(v.value()));
      else reader_read(*rp);  // evicted meanwhile: wait for it again
    });
    return;
  }
  if (!r.counted_stall_) {
    r.counted_stall_ = true;
    ++counters_.reader_stalls;
  }
  // Not here yet: the playhead move already asked the picker for it; wake_readers completes the read.
  fill_all_requests();
}

FileReader::FileReader(Torrent& torrent, ReaderId id, FileIndex file, std::uint64_t file_offset,
                       std::uint64_t length, std::string path)
    : torrent_(&torrent), id_(id), file_(file), file_offset_(file_offset), length_(length), path_(std::move(path)) {
  rate_since_ = Clock::now();
}

FileReader::~FileReader() {
  view_.reset();
  if (torrent_) torrent_->reader_closed(*this);
}

void FileReader::read(std::uint64_t offset, std::size_t max_len, ReadHandler handler) {
  view_.reset();
  if (!torrent_ || offset >= length_ || max_len == 0) {
    std::weak_ptr<char> alive = alive_;
    auto io = torrent_ ? &torrent_->ctx_.io : nullptr;
    if (!io) return;
    asio::post(*io, [handler = std::move(handler), alive] {
      if (!alive.expired()) handler(make_error("read outside the file"));
    });
    return;
  }
  // Consumption rate: bytes handed out over the last few seconds.
  const auto now = Clock::now();
  const double secs = std::chrono::duration<double>(now - rate_since_).count();
  if (secs >= 2.0) {
    rate_ = rate_bytes_ / secs;
    rate_bytes_ = 0;
    rate_since_ = now;
  }
  pending_ = true;
  want_offset_ = offset;
  want_len_ = max_len;
  handler_ = std::move(handler);
  torrent_->move_playhead(*this, offset);
  torrent_->reader_read(*this);
}

}  // namespace ph::engine
