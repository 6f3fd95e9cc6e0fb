// Picker: event handling, window geometry and the pick() policy (see picker.hpp for the contract).
#include "engine/picker.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "net/metainfo.hpp"

namespace ph::engine {

namespace {
constexpr std::uint32_t kMaxPieces = 1u << 26;  // 64 M pieces: far beyond any real torrent, bounds our allocations
constexpr std::uint32_t kMaxBlocksPerPiece = 1u << 16;

std::int64_t to_ns(PickerTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::int64_t seconds_to_ns(double s) {
  if (!(s > 0)) return 0;
  if (s > 1e9) return std::int64_t{1} << 62;  // effectively never
  return static_cast<std::int64_t>(s * 1e9);
}
}  // namespace

PickerConfig picker_config_from(const Metainfo& m) {
  PickerConfig c;
  c.piece_count = m.piece_count();
  c.piece_length = m.piece_length;
  c.total_length = m.total_length;
  c.files.reserve(m.files.size());
  for (const auto& f : m.files) c.files.push_back(PickerFile{f.offset, f.length, f.pad});
  return c;
}

Result<Picker> Picker::create(PickerConfig c) {
  if (c.piece_count == 0) return make_error("picker: a torrent needs at least one piece");
  if (c.piece_count > kMaxPieces) return make_error("picker: too many pieces");
  if (c.piece_length == 0 || c.block_size == 0) return make_error("picker: zero piece length or block size");
  const std::uint64_t full = static_cast<std::uint64_t>(c.piece_count) * c.piece_length;
  const std::uint64_t before_last = static_cast<std::uint64_t>(c.piece_count - 1) * c.piece_length;
  if (c.total_length <= before_last || c.total_length > full)
    return make_error("picker: total length " + std::to_string(c.total_length) + " does not match " +
                      std::to_string(c.piece_count) + " pieces of " + std::to_string(c.piece_length));
  if ((c.piece_length + c.block_size - 1) / c.block_size > kMaxBlocksPerPiece)
    return make_error("picker: too many blocks per piece");
  if (c.files.empty()) c.files.push_back(PickerFile{0, c.total_length, false});
  if (c.files.size() > 0xffffffffull) return make_error("picker: too many files");
  for (const auto& f : c.files)
    if (f.offset > c.total_length || f.length > c.total_length - f.offset)
      return make_error("picker: a file lies outside the torrent");
  if (c.max_requesters_per_block < 1 || c.max_requesters_per_block > 2)
    return make_error("picker: max_requesters_per_block must be 1 or 2");
  if (c.max_peers == 0 || c.max_playheads == 0) return make_error("picker: zero peer or playhead limit");
  if (!(c.urgent_seconds >= 0) || !(c.head_tail_fraction >= 0) || !(c.slow_peer_fraction >= 0) ||
      !(c.max_urgent_queue_seconds >= 0))
    return make_error("picker: negative or NaN time/fraction parameter");
  return Picker(std::move(c));
}

Picker::Picker(PickerConfig config)
    : cfg_(std::move(config)), avail_(cfg_.piece_count), have_(cfg_.piece_count, 0),
      selected_(cfg_.piece_count, 0), file_priority_(cfg_.files.size(), 0), slot_of_(cfg_.piece_count, kNoSlot),
      mark_(cfg_.piece_count, 0) {
  for (PieceIndex p = 0; p < cfg_.piece_count; ++p) avail_.exclude(p);  // nothing selected yet
  for (std::size_t f = 0; f < cfg_.files.size(); ++f) set_file_priority(static_cast<FileIndex>(f), 1);
}

// --- geometry -------------------------------------------------------------------------------------------------

std::uint32_t Picker::piece_size(PieceIndex p) const {
  if (p + 1 < cfg_.piece_count) return cfg_.piece_length;
  return static_cast<std::uint32_t>(cfg_.total_length - static_cast<std::uint64_t>(cfg_.piece_count - 1) *
                                                            cfg_.piece_length);
}
std::uint32_t Picker::blocks_in(PieceIndex p) const {
  return (piece_size(p) + cfg_.block_size - 1) / cfg_.block_size;
}
std::uint32_t Picker::block_length(PieceIndex p, std::uint32_t b) const {
  return std::min(cfg_.block_size, piece_size(p) - b * cfg_.block_size);
}

Picker::Downloading* Picker::start_piece(PieceIndex p) {
  std::uint32_t idx;
  if (!free_slots_.empty()) {
    idx = free_slots_.back();
    free_slots_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(pool_.size());
    pool_.emplace_back();
  }
  Downloading& d = pool_[idx];
  d.piece = p;
  d.blocks = blocks_in(p);
  d.requested_or_received = 0;
  d.received = 0;
  d.first_none = 0;
  d.active = true;
  d.block.assign(d.blocks, Block{});
  slot_of_[p] = idx;
  return &d;
}

void Picker::release_piece(PieceIndex p) {
  const std::uint32_t idx = slot_of_[p];
  if (idx == kNoSlot) return;
  pool_[idx].active = false;
  slot_of_[p] = kNoSlot;
  free_slots_.push_back(idx);
}

void Picker::update_exclusion(PieceIndex p) {
  if (have_[p] || selected_[p] == 0)
    avail_.exclude(p);
  else
    avail_.include(p);
}

void Picker::reset_block(Downloading& d, std::uint32_t b) {
  Block& blk = d.block[b];
  if (blk.state == BlockState::received) --d.received;
  if (blk.state != BlockState::none) --d.requested_or_received;
  blk = Block{};
  d.first_none = std::min(d.first_none, b);
}

// --- peers ----------------------------------------------------------------------------------------------------

Result<void> Picker::add_peer(PeerSlot peer) {
  if (peer >= cfg_.max_peers) return make_error("picker: peer slot " + std::to_string(peer) + " over the limit");
  if (peer >= peers_.size()) peers_.resize(static_cast<std::size_t>(peer) + 1);
  if (peers_[peer].connected) return make_error("picker: peer slot " + std::to_string(peer) + " already in use");
  Peer& pr = peers_[peer];
  pr = Peer{};
  pr.connected = true;
  pr.bits.assign((cfg_.piece_count + 63) / 64, 0);
  return {};
}

void Picker::remove_peer(PeerSlot peer) {
  if (!valid_peer(peer)) return;
  drop_requests_of(peer, false);
  peer_have_none(peer);
  peers_[peer] = Peer{};
  fastest_dirty_ = true;
}

void Picker::peer_have_none(PeerSlot peer) {
  if (!valid_peer(peer)) return;
  Peer& pr = peers_[peer];
  if (pr.seed) {
    avail_.remove_seed();
    pr.seed = false;
  } else if (pr.piece_count > 0) {
    for (std::size_t w = 0; w < pr.bits.size(); ++w) {
      std::uint64_t word = pr.bits[w];
      while (word) {
        const auto bit = static_cast<std::uint32_t>(std::countr_zero(word));
        avail_.decrement(static_cast<PieceIndex>(w * 64 + bit));
        word &= word - 1;
      }
      pr.bits[w] = 0;
    }
  }
  pr.piece_count = 0;
}

void Picker::peer_have_all(PeerSlot peer) {
  if (!valid_peer(peer)) return;
  if (peers_[peer].seed) return;
  peer_have_none(peer);
  peers_[peer].seed = true;
  avail_.add_seed();
}

void Picker::peer_have(PeerSlot peer, PieceIndex p) {
  if (!valid_peer(peer) || p >= cfg_.piece_count) return;
  Peer& pr = peers_[peer];
  if (peer_has(pr, p)) return;
  pr.bits[p >> 6] |= std::uint64_t{1} << (p & 63);
  ++pr.piece_count;
  avail_.increment(p);
  if (pr.piece_count == cfg_.piece_count) peer_have_all(peer);  // became a seed: O(1) from now on
}

void Picker::peer_dont_have(PeerSlot peer, PieceIndex p) {
  if (!valid_peer(peer) || p >= cfg_.piece_count) return;
  Peer& pr = peers_[peer];
  if (pr.seed) {
    // No longer a seed: spell its pieces out once (O(pieces)), then drop the one it lost.
    avail_.remove_seed();
    pr.seed = false;
    for (PieceIndex q = 0; q < cfg_.piece_count; ++q) {
      pr.bits[q >> 6] |= std::uint64_t{1} << (q & 63);
      avail_.increment(q);
    }
    pr.piece_count = cfg_.piece_count;
  }
  if (!peer_has(pr, p)) return;
  pr.bits[p >> 6] &= ~(std::uint64_t{1} << (p & 63));
  --pr.piece_count;
  avail_.decrement(p);
  if (Downloading* d = downloading(p)) {
    for (std::uint32_t b = 0; b < d->blocks; ++b) {
      const Block& blk = d->block[b];
      bool mine = false;
      for (std::uint8_t i = 0; blk.state == BlockState::requested && i < blk.requesters; ++i) mine |= blk.peer[i] == peer;
      if (mine) on_request_lost(peer, BlockRequest{p, b * cfg_.block_size, block_length(p, b)}, true);
    }
  }
}

void Picker::peer_bitfield(PeerSlot peer, std::span<const std::uint8_t> bitfield) {
  if (!valid_peer(peer)) return;
  peer_have_none(peer);
  const std::uint32_t n = std::min<std::uint64_t>(cfg_.piece_count, bitfield.size() * 8ull);
  std::uint32_t ones = 0;
  for (std::uint32_t p = 0; p < n; ++p) ones += (bitfield[p >> 3] >> (7 - (p & 7))) & 1u;
  if (ones == cfg_.piece_count) {
    peer_have_all(peer);
    return;
  }
  Peer& pr = peers_[peer];
  for (std::uint32_t p = 0; p < n; ++p) {
    if ((bitfield[p >> 3] >> (7 - (p & 7))) & 1u) {
      pr.bits[p >> 6] |= std::uint64_t{1} << (p & 63);
      avail_.increment(p);
    }
  }
  pr.piece_count = ones;
}

void Picker::peer_choked(PeerSlot peer) {
  if (!valid_peer(peer)) return;
  peers_[peer].choked = true;
  drop_requests_of(peer, false);
  fastest_dirty_ = true;
}

void Picker::peer_unchoked(PeerSlot peer) {
  if (!valid_peer(peer)) return;
  peers_[peer].choked = false;
  fastest_dirty_ = true;
}

void Picker::peer_rate(PeerSlot peer, double bytes_per_second) {
  if (!valid_peer(peer)) return;
  peers_[peer].rate = (bytes_per_second > 0 && std::isfinite(bytes_per_second)) ? bytes_per_second : 0;
  fastest_dirty_ = true;
}

void Picker::forget_requester(Block& b, PeerSlot peer) {
  for (std::uint8_t i = 0; i < b.requesters; ++i) {
    if (b.peer[i] == peer) {
      b.peer[i] = b.peer[b.requesters - 1];
      --b.requesters;
      return;
    }
  }
}

void Picker::drop_requests_of(PeerSlot peer, bool emit_cancel) {
  for (auto& d : pool_) {
    if (!d.active) continue;
    for (std::uint32_t b = 0; b < d.blocks; ++b) {
      Block& blk = d.block[b];
      if (blk.state != BlockState::requested) continue;
      const std::uint8_t before = blk.requesters;
      forget_requester(blk, peer);
      if (blk.requesters == before) continue;
      if (emit_cancel) {
        cancels_.push_back(Cancellation{peer, BlockRequest{d.piece, b * cfg_.block_size, block_length(d.piece, b)}});
        ++stats_.cancellations;
      }
      if (blk.requesters == 0) reset_block(d, b);
    }
  }
  Peer& pr = peers_[peer];
  pr.outstanding = 0;
  pr.outstanding_bytes = 0;
}

// --- our pieces -----------------------------------------------------------------------------------------------

void Picker::piece_verified(PieceIndex p) {
  if (p >= cfg_.piece_count || have_[p]) return;
  if (Downloading* d = downloading(p)) {
    // Anything still requested (end-game twins, data that came from elsewhere) is no longer needed.
    for (std::uint32_t b = 0; b < d->blocks; ++b) {
      Block& blk = d->block[b];
      if (blk.state != BlockState::requested) continue;
      for (std::uint8_t i = 0; i < blk.requesters; ++i) {
        const PeerSlot q = blk.peer[i];
        if (valid_peer(q)) {
          Peer& pr = peers_[q];
          pr.outstanding -= std::min<std::uint32_t>(pr.outstanding, 1);
          pr.outstanding_bytes -= std::min<std::uint64_t>(pr.outstanding_bytes, block_length(p, b));
          cancels_.push_back(Cancellation{q, BlockRequest{p, b * cfg_.block_size, block_length(p, b)}});
          ++stats_.cancellations;
        }
      }
    }
    release_piece(p);
  }
  have_[p] = 1;
  ++pieces_had_;
  if (selected_[p]) ++pieces_selected_had_;
  update_exclusion(p);
}

void Picker::piece_failed(PieceIndex p) {
  if (p >= cfg_.piece_count || have_[p]) return;
  Downloading* d = downloading(p);
  if (!d) return;
  for (std::uint32_t b = 0; b < d->blocks; ++b)
    if (d->block[b].state == BlockState::received) reset_block(*d, b);
}

void Picker::piece_evicted(PieceIndex p) {
  if (p >= cfg_.piece_count) return;
  if (have_[p]) {
    have_[p] = 0;
    --pieces_had_;
    if (selected_[p]) --pieces_selected_had_;
    update_exclusion(p);
    return;
  }
  if (Downloading* d = downloading(p)) {  // a partial piece abandoned: its blocks are gone
    for (std::uint32_t b = 0; b < d->blocks; ++b) {
      Block& blk = d->block[b];
      for (std::uint8_t i = 0; blk.state == BlockState::requested && i < blk.requesters; ++i) {
        const PeerSlot q = blk.peer[i];
        if (!valid_peer(q)) continue;
        Peer& pr = peers_[q];
        pr.outstanding -= std::min<std::uint32_t>(pr.outstanding, 1);
        pr.outstanding_bytes -= std::min<std::uint64_t>(pr.outstanding_bytes, block_length(p, b));
        cancels_.push_back(Cancellation{q, BlockRequest{p, b * cfg_.block_size, block_length(p, b)}});
        ++stats_.cancellations;
      }
    }
    release_piece(p);
  }
}

BlockOutcome Picker::block_received(PeerSlot peer, BlockRequest block) {
  const PieceIndex p = block.piece;
  if (p >= cfg_.piece_count || block.offset % cfg_.block_size != 0) return BlockOutcome::unwanted;
  const std::uint32_t b = block.offset / cfg_.block_size;
  if (b >= blocks_in(p) || block.length != block_length(p, b)) return BlockOutcome::unwanted;

  auto settle = [&](PeerSlot q) {  // q's request for this block is answered (or void)
    if (!valid_peer(q)) return;
    Peer& pr = peers_[q];
    pr.outstanding -= std::min<std::uint32_t>(pr.outstanding, 1);
    pr.outstanding_bytes -= std::min<std::uint64_t>(pr.outstanding_bytes, block.length);
  };

  Downloading* d = downloading(p);
  if (have_[p]) return BlockOutcome::duplicate;
  if (!d) {
    // Data nobody asked for (a cancel crossed it, or it arrived after pause): still useful.
    d = start_piece(p);
  }
  Block& blk = d->block[b];
  bool was_requester = false;
  for (std::uint8_t i = 0; i < blk.requesters; ++i) was_requester |= blk.peer[i] == peer;
  if (was_requester) {
    forget_requester(blk, peer);
    settle(peer);
  }
  if (blk.state == BlockState::received) return BlockOutcome::duplicate;
  if (blk.state == BlockState::none) ++d->requested_or_received;
  // Every other requester lost the race: cancel them.
  for (std::uint8_t i = 0; i < blk.requesters; ++i) {
    const PeerSlot q = blk.peer[i];
    settle(q);
    if (valid_peer(q)) {
      cancels_.push_back(Cancellation{q, block});
      ++stats_.cancellations;
    }
  }
  blk.requesters = 0;
  blk.state = BlockState::received;
  ++d->received;
  return d->received == d->blocks ? BlockOutcome::piece_complete : BlockOutcome::accepted;
}

void Picker::on_request_lost(PeerSlot peer, BlockRequest block, bool emit_cancel) {
  const PieceIndex p = block.piece;
  if (p >= cfg_.piece_count || block.offset % cfg_.block_size != 0) return;
  const std::uint32_t b = block.offset / cfg_.block_size;
  Downloading* d = downloading(p);
  if (!d || b >= d->blocks) return;
  Block& blk = d->block[b];
  if (blk.state != BlockState::requested) return;
  const std::uint8_t before = blk.requesters;
  forget_requester(blk, peer);
  if (blk.requesters == before) return;
  if (valid_peer(peer)) {
    Peer& pr = peers_[peer];
    pr.outstanding -= std::min<std::uint32_t>(pr.outstanding, 1);
    pr.outstanding_bytes -= std::min<std::uint64_t>(pr.outstanding_bytes, block_length(p, b));
    if (emit_cancel) {
      cancels_.push_back(Cancellation{peer, BlockRequest{p, block.offset, block_length(p, b)}});
      ++stats_.cancellations;
    }
  }
  if (blk.requesters == 0) reset_block(*d, b);
}

void Picker::block_rejected(PeerSlot peer, BlockRequest block) { on_request_lost(peer, block, false); }
void Picker::request_timed_out(PeerSlot peer, BlockRequest block) { on_request_lost(peer, block, true); }

// --- selection ------------------------------------------------------------------------------------------------

void Picker::set_selected_range(const PickerFile& f, int delta) {
  if (f.length == 0) return;
  const auto first = static_cast<PieceIndex>(f.offset / cfg_.piece_length);
  const auto last = static_cast<PieceIndex>((f.offset + f.length - 1) / cfg_.piece_length);
  for (PieceIndex p = first; p <= last && p < cfg_.piece_count; ++p) {
    const bool before = selected_[p] > 0;
    selected_[p] = static_cast<std::uint32_t>(static_cast<std::int64_t>(selected_[p]) + delta);
    const bool after = selected_[p] > 0;
    if (before == after) continue;
    if (after) {
      ++pieces_selected_;
      if (have_[p]) ++pieces_selected_had_;
    } else {
      --pieces_selected_;
      if (have_[p]) --pieces_selected_had_;
    }
    update_exclusion(p);
  }
}

void Picker::set_file_priority(FileIndex file, std::uint8_t priority) {
  if (file >= cfg_.files.size()) return;
  const PickerFile& f = cfg_.files[file];
  if (f.pad) priority = 0;
  const bool was = file_priority_[file] > 0;
  file_priority_[file] = priority;
  const bool is = priority > 0;
  if (was == is) return;
  set_selected_range(f, is ? 1 : -1);
  if (!is) {
    // Requests for pieces no longer selected are useless now.
    for (auto& d : pool_) {
      if (!d.active || selected_[d.piece] > 0) continue;
      for (std::uint32_t b = 0; b < d.blocks; ++b) {
        Block& blk = d.block[b];
        while (blk.state == BlockState::requested && blk.requesters > 0)
          on_request_lost(blk.peer[0], BlockRequest{d.piece, b * cfg_.block_size, block_length(d.piece, b)}, true);
      }
    }
  }
}

void Picker::select_only(FileIndex file) {
  // Select first, then deselect, so that the shared boundary pieces never drop out in between.
  set_file_priority(file, 1);
  for (std::size_t f = 0; f < cfg_.files.size(); ++f)
    if (f != file) set_file_priority(static_cast<FileIndex>(f), 0);
}

// --- playheads ------------------------------------------------------------------------------------------------

void Picker::recompute_windows(Playhead& h) {
  h.urgent = h.window = h.head = h.tail = h.tail_urgent = h.head_urgent = Range{};
  const std::uint64_t pos = h.spec.offset;
  const std::uint64_t fb = h.file_begin, fe = h.file_end;
  const std::uint64_t plen = cfg_.piece_length;
  if (pos >= fe) return;
  const auto first = static_cast<PieceIndex>(pos / plen);
  const auto file_last = static_cast<PieceIndex>((fe - 1) / plen + 1);
  if (cfg_.policy == PickPolicy::sequential) {
    h.urgent = Range{first, first};
    h.window = Range{first, file_last};
    return;
  }
  const double urgent_bytes = h.spec.bytes_per_second > 0 ? h.spec.bytes_per_second * cfg_.urgent_seconds : 0;
  const std::uint64_t urgent_end = std::min<std::uint64_t>(fe, pos + static_cast<std::uint64_t>(std::min(urgent_bytes, 1e15)));
  auto ulast = static_cast<PieceIndex>((urgent_end + plen - 1) / plen);
  ulast = std::max<PieceIndex>(ulast, first + std::max<std::uint32_t>(cfg_.min_urgent_pieces, 1));
  ulast = std::min(ulast, file_last);
  const std::uint64_t window_end = std::min<std::uint64_t>(fe, pos + cfg_.readahead_bytes);
  auto wlast = static_cast<PieceIndex>((window_end + plen - 1) / plen);
  wlast = std::min(std::max(wlast, ulast), file_last);
  h.urgent = Range{first, ulast};
  h.window = Range{first, wlast};
  if (h.spec.stream_start && cfg_.policy == PickPolicy::window) {
    const std::uint64_t len = fe - fb;
    std::uint64_t ht = std::max<std::uint64_t>(cfg_.head_tail_min_bytes,
                                               static_cast<std::uint64_t>(static_cast<double>(len) *
                                                                          cfg_.head_tail_fraction));
    ht = std::min(ht, len);
    h.head = Range{static_cast<PieceIndex>(fb / plen), static_cast<PieceIndex>((fb + ht + plen - 1) / plen)};
    h.tail = Range{static_cast<PieceIndex>((fe - ht) / plen), file_last};
    const std::uint32_t n = std::max<std::uint32_t>(cfg_.min_urgent_pieces, 1);
    h.tail_urgent = Range{std::max(h.tail.first, file_last > n ? file_last - n : 0), file_last};
    h.head_urgent = Range{h.head.first, std::min(h.head.last, h.head.first + (ulast - first))};
  }
}

bool Picker::in_any_window(PieceIndex p) const {
  for (const auto& h : playheads_) {
    if (p >= h.window.first && p < h.window.last) return true;
    if (p >= h.head.first && p < h.head.last) return true;
    if (p >= h.tail.first && p < h.tail.last) return true;
  }
  return false;
}

void Picker::cancel_outside_windows() {
  for (auto& d : pool_) {
    if (!d.active || in_any_window(d.piece)) continue;
    for (std::uint32_t b = 0; b < d.blocks; ++b) {
      Block& blk = d.block[b];
      while (blk.state == BlockState::requested && blk.requesters > 0)
        on_request_lost(blk.peer[0], BlockRequest{d.piece, b * cfg_.block_size, block_length(d.piece, b)}, true);
    }
    if (d.received == 0) release_piece(d.piece);
  }
}

bool Picker::set_playhead_impl(ReaderId reader, PlayheadSpec spec, std::uint64_t file_begin,
                               std::uint64_t file_end) {
  Playhead* h = nullptr;
  for (auto& x : playheads_)
    if (x.reader == reader) h = &x;
  if (!h) {
    if (playheads_.size() >= cfg_.max_playheads) return false;
    playheads_.push_back(Playhead{});
    h = &playheads_.back();
    h->reader = reader;
  }
  const Range old_window = h->window;
  const bool seek = spec.offset < h->spec.offset ||
                    spec.offset / cfg_.piece_length >= std::max(old_window.last, old_window.first + 1);
  h->spec = spec;
  h->file_begin = file_begin;
  h->file_end = file_end;
  recompute_windows(*h);
  // Memory mode: what the playhead has passed is useless. Disk mode: everything selected is wanted eventually, so
  // only a real seek frees the peers' queues for the new window.
  if (cfg_.policy != PickPolicy::rarest_first && (!cfg_.disk_mode || seek)) cancel_outside_windows();
  return true;
}

Result<void> Picker::set_playhead(ReaderId reader, PlayheadSpec spec) {
  if (spec.offset > cfg_.total_length) return make_error("picker: playhead beyond the end of the torrent");
  // The playhead's file: the non-pad file holding the offset (files are in torrent order).
  std::uint64_t fb = 0, fe = cfg_.total_length;
  auto it = std::upper_bound(cfg_.files.begin(), cfg_.files.end(), spec.offset,
                             [](std::uint64_t off, const PickerFile& f) { return off < f.offset; });
  while (it != cfg_.files.begin()) {
    --it;
    if (!it->pad && it->length > 0 && spec.offset < it->offset + it->length) {
      fb = it->offset;
      fe = it->offset + it->length;
      break;
    }
    if (it->offset + it->length <= spec.offset && it->length > 0) break;
  }
  if (!set_playhead_impl(reader, spec, fb, fe)) return make_error("picker: too many playheads");
  return {};
}

Result<void> Picker::set_playhead_in_file(ReaderId reader, FileIndex file, std::uint64_t offset_in_file,
                                          double bytes_per_second, bool stream_start) {
  if (file >= cfg_.files.size()) return make_error("picker: no such file");
  const PickerFile& f = cfg_.files[file];
  if (offset_in_file > f.length) return make_error("picker: playhead beyond the end of the file");
  PlayheadSpec spec{f.offset + offset_in_file, bytes_per_second, stream_start};
  if (!set_playhead_impl(reader, spec, f.offset, f.offset + f.length)) return make_error("picker: too many playheads");
  return {};
}

void Picker::remove_playhead(ReaderId reader) {
  auto it = std::find_if(playheads_.begin(), playheads_.end(), [&](const Playhead& h) { return h.reader == reader; });
  if (it == playheads_.end()) return;
  playheads_.erase(it);
  if (!cfg_.disk_mode && cfg_.policy != PickPolicy::rarest_first) cancel_outside_windows();
}

void Picker::set_readahead(std::uint64_t bytes) {
  cfg_.readahead_bytes = bytes;
  for (auto& h : playheads_) recompute_windows(h);
  if (!cfg_.disk_mode && cfg_.policy != PickPolicy::rarest_first) cancel_outside_windows();
}

// --- flow control ---------------------------------------------------------------------------------------------

void Picker::pause() {
  paused_ = true;
  for (PeerSlot s = 0; s < peers_.size(); ++s)
    if (peers_[s].connected) drop_requests_of(s, true);
  for (auto& d : pool_)
    if (d.active && d.received == 0) release_piece(d.piece);
}

void Picker::resume() { paused_ = false; }

std::vector<Cancellation> Picker::take_cancellations() {
  std::vector<Cancellation> out;
  out.swap(cancels_);
  return out;
}

// --- picking --------------------------------------------------------------------------------------------------

std::int64_t Picker::queue_ns(const Peer& peer, std::uint32_t extra_bytes) const {
  if (peer.rate <= 0) return seconds_to_ns(cfg_.max_urgent_queue_seconds);
  return seconds_to_ns(static_cast<double>(peer.outstanding_bytes + extra_bytes) / peer.rate);
}

void Picker::refresh_fast_peers() const {
  if (!fastest_dirty_) return;
  fastest_dirty_ = false;
  fastest_ = 0;
  for (const auto& p : peers_)
    if (p.connected && !p.choked) fastest_ = std::max(fastest_, p.rate);
  fast_peers_.clear();
  for (PeerSlot s = 0; s < peers_.size(); ++s) {
    const Peer& p = peers_[s];
    if (p.connected && !p.choked && (fastest_ <= 0 || p.rate >= cfg_.slow_peer_fraction * fastest_))
      fast_peers_.push_back(s);
  }
}

bool Picker::urgent_eligible(const Peer& peer) const {
  refresh_fast_peers();
  if (fastest_ <= 0) return true;  // nothing measured yet: everyone may try
  return peer.rate >= cfg_.slow_peer_fraction * fastest_;
}

std::uint32_t Picker::queue_room(const Peer& peer) const {
  if (peer.rate <= 0)
    return peer.outstanding >= cfg_.unknown_rate_queue_blocks ? 0 : cfg_.unknown_rate_queue_blocks - peer.outstanding;
  const double room = cfg_.max_queue_seconds * peer.rate - static_cast<double>(peer.outstanding_bytes);
  if (room < cfg_.block_size) return peer.outstanding == 0 ? 1 : 0;
  return static_cast<std::uint32_t>(std::min(room / cfg_.block_size, 1e6));
}

std::uint32_t Picker::urgent_allowance(const Peer& peer) const {
  if (peer.rate <= 0)
    return peer.outstanding >= cfg_.unknown_rate_urgent_blocks ? 0 : cfg_.unknown_rate_urgent_blocks - peer.outstanding;
  const double room = cfg_.max_urgent_queue_seconds * peer.rate - static_cast<double>(peer.outstanding_bytes);
  if (room < cfg_.block_size) return peer.outstanding == 0 ? 1 : 0;  // an idle peer always gets one
  return static_cast<std::uint32_t>(std::min(room / cfg_.block_size, 1e6));
}

bool Picker::fast_peer_has(PieceIndex p, PeerSlot except) const {
  refresh_fast_peers();
  for (PeerSlot s : fast_peers_)
    if (s != except && peer_has(peers_[s], p)) return true;
  return false;
}

bool Picker::take_blocks(Peer& peer, PeerSlot slot, PieceIndex p, std::uint32_t& free, std::int64_t now_ns,
                         bool allow_duplicates, std::vector<BlockRequest>& out) {
  Downloading* d = downloading(p);
  if (!d) {
    const std::uint32_t size = piece_size(p);
    if (budget_ < size) return free > 0;  // backpressure: no new piece, but keep looking at started ones
    budget_ -= size;
    d = start_piece(p);
  }
  for (std::uint32_t b = d->first_none; b < d->blocks && free > 0 && d->requested_or_received < d->blocks; ++b) {
    Block& blk = d->block[b];
    if (blk.state != BlockState::none) {
      if (b == d->first_none) ++d->first_none;
      continue;
    }
    const std::uint32_t len = block_length(p, b);
    blk.state = BlockState::requested;
    blk.requesters = 1;
    blk.peer[0] = slot;
    blk.expected_ns = now_ns + queue_ns(peer, len);
    ++d->requested_or_received;
    if (b == d->first_none) ++d->first_none;
    peer.outstanding_bytes += len;
    ++peer.outstanding;
    out.push_back(BlockRequest{p, b * cfg_.block_size, len});
    ++stats_.blocks_picked;
    --free;
  }
  if (allow_duplicates && free > 0 && cfg_.max_requesters_per_block > 1 && peer.rate > 0 &&
      d->requested_or_received == d->blocks) {
    // End-game inside the urgent zone: duplicate a block when this peer clearly beats its current requester
    // (would deliver in less than half the remaining expected time) or the requester is already late.
    for (std::uint32_t b = 0; b < d->blocks && free > 0; ++b) {
      Block& blk = d->block[b];
      if (blk.state != BlockState::requested || blk.requesters != 1 || blk.peer[0] == slot) continue;
      const std::uint32_t len = block_length(p, b);
      const std::int64_t mine = now_ns + queue_ns(peer, len);
      const std::int64_t remaining = blk.expected_ns - now_ns;
      if (!(now_ns > blk.expected_ns || (mine - now_ns) * 2 < remaining)) continue;
      blk.peer[1] = slot;
      blk.requesters = 2;
      blk.expected_ns = std::min(blk.expected_ns, mine);
      peer.outstanding_bytes += len;
      ++peer.outstanding;
      out.push_back(BlockRequest{p, b * cfg_.block_size, len});
      ++stats_.blocks_picked;
      ++stats_.duplicate_requests;
      --free;
    }
  }
  return free > 0;
}

bool Picker::pick_in_order(Peer& peer, PeerSlot slot, Range r, std::uint32_t& free, std::int64_t now_ns, bool endgame,
                           std::vector<BlockRequest>& out, bool reverse, bool* starved) {
  // Sequential ranges can span a whole file: the scan is bounded like the background scan.
  const std::uint32_t span = std::min<std::uint32_t>(r.last - r.first, std::max<std::uint32_t>(cfg_.max_scan_pieces, 1));
  const bool slow = endgame && !urgent_eligible(peer);
  // In the urgent zone a peer only takes what it can deliver soon; the rest of its slots go to the readahead.
  std::uint32_t room = endgame ? std::min(free, urgent_allowance(peer)) : free;
  for (std::uint32_t i = 0; i < span; ++i) {
    const PieceIndex p = reverse ? r.last - 1 - i : r.first + i;
    if (have_[p] || selected_[p] == 0 || !peer_has(peer, p)) continue;
    const Downloading* d = slot_of_[p] == kNoSlot ? nullptr : &pool_[slot_of_[p]];
    const bool all_requested = d && d->requested_or_received == d->blocks;
    if (room == 0) {
      // Out of room: tell the caller whether urgent work this peer could do is still waiting.
      if (starved && !slow && !all_requested && (d || budget_ >= piece_size(p))) *starved = true;
      if (!starved || *starved || free == 0) break;
      continue;
    }
    const std::size_t before = out.size();
    if (slow) {
      // Slow peers stay out of the urgent zone unless no fast peer could ever serve this piece.
      if (all_requested || fast_peer_has(p, slot)) continue;
      take_blocks(peer, slot, p, room, now_ns, false, out);
    } else {
      if (all_requested && !endgame) continue;
      take_blocks(peer, slot, p, room, now_ns, endgame, out);
    }
    free -= static_cast<std::uint32_t>(out.size() - before);
  }
  return free > 0;
}

bool Picker::pick_rarest_in(Peer& peer, PeerSlot slot, std::span<const Range> ranges, std::uint32_t& free,
                            std::int64_t now_ns, std::vector<BlockRequest>& out) {
  if (++generation_ == 0) {  // wrapped: forget every old mark
    std::fill(mark_.begin(), mark_.end(), 0);
    generation_ = 1;
  }
  scratch_.clear();
  for (const Range& r : ranges) {
    for (PieceIndex p = r.first; p < r.last; ++p) {
      if (mark_[p] == generation_) continue;
      mark_[p] = generation_;
      if (have_[p] || selected_[p] == 0 || !peer_has(peer, p)) continue;
      const std::uint32_t idx = slot_of_[p];
      if (idx != kNoSlot) {
        if (pool_[idx].requested_or_received == pool_[idx].blocks) continue;
        scratch_.push_back(Candidate{std::min(avail_.count(p), 0x7fffffffu), p});  // started: first
      } else {
        if (budget_ < piece_size(p)) continue;
        scratch_.push_back(Candidate{0x80000000u | std::min(avail_.count(p), 0x7fffffffu), p});
      }
    }
  }
  // Typically one or two pieces fill the request slots: repeated minimum beats sorting the whole window.
  while (free > 0 && !scratch_.empty()) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < scratch_.size(); ++i) {
      const Candidate& a = scratch_[i];
      const Candidate& m = scratch_[best];
      if (a.key < m.key || (a.key == m.key && a.piece < m.piece)) best = i;
    }
    const PieceIndex p = scratch_[best].piece;
    scratch_[best] = scratch_.back();
    scratch_.pop_back();
    take_blocks(peer, slot, p, free, now_ns, false, out);
  }
  return free > 0;
}

bool Picker::pick_background(Peer& peer, PeerSlot slot, std::uint32_t& free, std::int64_t now_ns,
                             std::vector<BlockRequest>& out) {
  const std::uint32_t n = std::min(avail_.included_count(), std::max<std::uint32_t>(cfg_.max_scan_pieces, 1));
  for (std::uint32_t i = 0; i < n && free > 0; ++i) {
    const PieceIndex p = avail_.rarest(i);
    if (!peer_has(peer, p)) continue;
    const std::uint32_t idx = slot_of_[p];
    if (idx != kNoSlot && pool_[idx].requested_or_received == pool_[idx].blocks) continue;
    take_blocks(peer, slot, p, free, now_ns, false, out);
  }
  return free > 0;
}

std::size_t Picker::pick(PeerSlot slot, std::uint32_t free_slots, PickerTime now, std::vector<BlockRequest>& out) {
  if (paused_ || free_slots == 0 || !valid_peer(slot)) return 0;
  Peer& peer = peers_[slot];
  if (peer.choked || (!peer.seed && peer.piece_count == 0)) return 0;
  const std::size_t before = out.size();
  const std::int64_t now_ns = to_ns(now);
  std::uint32_t free = free_slots;

  switch (cfg_.policy) {
    case PickPolicy::rarest_first:
      pick_background(peer, slot, free, now_ns, out);
      break;
    case PickPolicy::sequential:
      for (const auto& h : playheads_)
        if (!pick_in_order(peer, slot, h.window, free, now_ns, false, out)) break;
      if (free > 0 && cfg_.disk_mode) pick_background(peer, slot, free, now_ns, out);
      break;
    case PickPolicy::window:
    case PickPolicy::window_no_tail: {
      bool starved = false;
      for (const auto& h : playheads_) {
        if (h.tail_urgent.last > h.tail_urgent.first) {
          // Stream start: the first pieces, the file's last pieces (its index), then the rest of the urgent zone.
          const PieceIndex split = std::min(h.urgent.last, h.urgent.first + std::max<std::uint32_t>(cfg_.min_urgent_pieces, 1));
          if (!pick_in_order(peer, slot, Range{h.urgent.first, split}, free, now_ns, true, out, false, &starved)) break;
          if (!pick_in_order(peer, slot, h.tail_urgent, free, now_ns, true, out, true, &starved)) break;
          if (!pick_in_order(peer, slot, h.head_urgent, free, now_ns, true, out, false, &starved)) break;
          if (!pick_in_order(peer, slot, Range{split, h.urgent.last}, free, now_ns, true, out, false, &starved)) break;
        } else if (!pick_in_order(peer, slot, h.urgent, free, now_ns, true, out, false, &starved)) {
          break;
        }
      }
      // Strict priority: while urgent blocks wait for room in this peer's queue, nothing else goes into it.
      if (starved) break;
      // Everything else only while the queue is short (see max_queue_seconds).
      const std::uint32_t room = std::min(free, queue_room(peer));
      const std::uint32_t unused = free - room;
      free = room;
      for (const auto& h : playheads_) {
        if (free == 0) break;
        // The head in order, then the tail from the very end backwards: a container index ends there (mp4 moov,
        // mkv cues, avi idx1) and its last pieces were already urgent.
        if (h.head.last > h.head.first) pick_in_order(peer, slot, h.head, free, now_ns, false, out);
        if (free > 0 && h.tail.last > h.tail.first) pick_in_order(peer, slot, h.tail, free, now_ns, false, out, true);
      }
      if (free > 0 && !playheads_.empty()) {
        Range stack_ranges[8];
        std::vector<Range> heap_ranges;
        std::span<const Range> ranges;
        if (playheads_.size() <= 8) {
          for (std::size_t i = 0; i < playheads_.size(); ++i)
            stack_ranges[i] = Range{playheads_[i].urgent.last, playheads_[i].window.last};
          ranges = std::span<const Range>(stack_ranges, playheads_.size());
        } else {
          for (const auto& h : playheads_) heap_ranges.push_back(Range{h.urgent.last, h.window.last});
          ranges = heap_ranges;
        }
        pick_rarest_in(peer, slot, ranges, free, now_ns, out);
      }
      if (free > 0 && cfg_.disk_mode) pick_background(peer, slot, free, now_ns, out);
      free += unused;
      break;
    }
  }
  return out.size() - before;
}

// --- queries --------------------------------------------------------------------------------------------------

std::uint64_t Picker::outstanding_bytes(PeerSlot peer) const {
  return valid_peer(peer) ? peers_[peer].outstanding_bytes : 0;
}
std::uint32_t Picker::outstanding_requests(PeerSlot peer) const {
  return valid_peer(peer) ? peers_[peer].outstanding : 0;
}

PickerStats Picker::stats() const {
  PickerStats s = stats_;
  s.pieces_in_progress = static_cast<std::uint32_t>(pool_.size() - free_slots_.size());
  s.pieces_had = pieces_had_;
  s.pieces_wanted = pieces_selected_ - pieces_selected_had_;
  return s;
}

}  // namespace ph::engine
