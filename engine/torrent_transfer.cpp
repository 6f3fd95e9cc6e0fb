// Torrent: moving piece data. Requesting blocks chosen by the picker, receiving and verifying them, serving
// blocks to peers, and cleaning up when a peer goes away.
#include "engine/torrent_peer.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <memory>

#include "engine/log.hpp"

namespace ph::engine {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::uint32_t kMaxRequest = 128 * 1024;  // the largest block a peer may ask for (libtorrent's limit too)
}  // namespace

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
  counters_.downloaded += m.length;
  if (it == p.requests.end()) {
    // Never asked of this peer (or cancelled): dropped. Accepting it would let any peer write into pieces an honest
    // peer is filling, and the failed hash check would then blame (and ban) the honest peer too.
    counters_.wasted += m.length;
    return;
  }
  p.requests.erase(it);
  p.last_block = Clock::now();
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
    close_violator(p, "bad block: " + written.error().message);
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

// ---- uploading -----------------------------------------------------------------------------------------------

void Torrent::handle_request(Peer& p, const wire::Message& m) {
  const bool fast = p.conn->remote_supports_fast();
  auto reject = [&] {
    if (fast) p.conn->send_reject(m.piece, m.offset, m.length);
  };
  if (!metainfo_ || !store_ || p.am_choking) return reject();
  if (m.length == 0 || m.length > kMaxRequest || m.piece >= metainfo_->piece_count() ||
      std::uint64_t{m.offset} + m.length > metainfo_->piece_size(m.piece)) {
    close_violator(p, "request outside the piece");
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
        prefetch_uploads(p, b.piece);
        return;
      }
      p.uploads.pop_front();
      if (p.conn->remote_supports_fast()) p.conn->send_reject(b.piece, b.offset, b.length);
      continue;
    }
    p.uploads.pop_front();
    if (b.piece != p.prefetched_after) prefetch_uploads(p, b.piece);
    // Sent straight from the arena: the connection holds the pinned view until the write carrying it completes.
    // A request is at most kMaxRequest bytes (handle_request): kMaxRequest / 16 KiB arena blocks, plus one.
    auto pinned = std::make_shared<storage::PieceView>(std::move(*view));
    std::array<std::span<const std::byte>, kMaxRequest / kBlockSize + 1> segments;
    std::size_t count = 0, length = 0;
    pinned->for_each_segment(b.offset, b.length, [&](std::span<const std::byte> seg) {
      segments[count++] = seg;
      length += seg.size();
    });
    if (length != b.length) continue;
    if (p.conn->send_piece(b.piece, b.offset, std::span(segments.data(), count), std::move(pinned))) {
      counters_.uploaded += b.length;
    }
  }
}

void Torrent::prefetch_uploads(Peer& p, PieceIndex sending) {
  // Disk mode: a piece is loaded only when the request at the front needs it, and the send queue drains while it
  // loads. Loading the next pieces the peer asked for while the current one is sent keeps the link busy.
  constexpr std::size_t kAhead = 2, kScan = 128;
  p.prefetched_after = sending;
  std::size_t started = 0;
  PieceIndex last = sending;
  const std::size_t scan = std::min(p.uploads.size(), kScan);
  for (std::size_t i = 0; i < scan && started < kAhead; ++i) {
    const PieceIndex piece = p.uploads[i].piece;
    if (piece == last) continue;
    last = piece;
    if (!store_->has(piece) || store_->try_view(piece)) continue;
    store_->read_piece(piece, [](Result<storage::PieceView>) {});  // stays cached, unpinned, when the view drops
    ++started;
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

void Torrent::close_violator(Peer& p, const std::string& reason) {
  p.violated = true;
  close_peer(p, reason);
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
  if (p->violated || c.closed_for_protocol_violation()) strike(p->address, reason);
  auto pe = pool_.find(p->address);
  if (pe != pool_.end()) {
    auto& e = pe->second;
    e.connected = false;
    if (!p->handshaken) ++e.failures;
    else e.failures = 0;
    // Retry soon after the first failure (a peer may drop one handshake while it starts), then back off:
    // 2, 4, 8, ... seconds, at most 10 minutes.
    const auto backoff = std::chrono::seconds(std::min<unsigned>(600, 1u << std::min(std::max(e.failures, 1u), 10u)));
    e.next_attempt = Clock::now() + backoff;
  }
  c.set_handler(nullptr);
  fill_all_requests();
}
}  // namespace ph::engine
