// Torrent: lifecycle (start, metadata, store, stop), periodic work (choking, announces, DHT), pause and selection,
// and the queries the API reads. Peers are in torrent_peers.cpp, piece transfer in torrent_transfer.cpp, BEP 9/11
// in torrent_exchange.cpp, streaming reads in file_reader.cpp.
#include "engine/torrent.hpp"
#include "engine/torrent_peer.hpp"

#include <algorithm>

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
}  // namespace ph::engine
