// ArenaStore: assembly, verification and views shared by memory and disk mode (see arena_store.hpp).
#include "storage/arena_store.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <cstring>

namespace ph::storage {

// ---- PieceView ----

PieceView::PieceView(Arena& arena, ArenaId id, PieceIndex piece)
    : arena_(&arena), id_(id), piece_(piece), bytes_(arena.bytes(id)) {
  arena.pin(id);
}

PieceView::PieceView(PieceView&& o) noexcept
    : arena_(std::exchange(o.arena_, nullptr)), id_(o.id_), piece_(o.piece_), bytes_(o.bytes_) {}

PieceView& PieceView::operator=(PieceView&& o) noexcept {
  if (this != &o) {
    reset();
    arena_ = std::exchange(o.arena_, nullptr);
    id_ = o.id_;
    piece_ = o.piece_;
    bytes_ = o.bytes_;
  }
  return *this;
}

void PieceView::reset() {
  if (arena_ != nullptr) arena_->unpin(id_);
  arena_ = nullptr;
  bytes_ = {};
}

// ---- ArenaStore ----

ArenaStore::ArenaStore(Arena& arena, Hasher& hasher, FileLayout layout, std::string piece_hashes)
    : arena_(arena),
      hasher_(hasher),
      layout_(std::move(layout)),
      piece_hashes_(std::move(piece_hashes)),
      pieces_(layout_.piece_count()),
      received_bits_((static_cast<std::uint64_t>(layout_.piece_count()) * blocks_per_piece() + 63) / 64),
      owner_(arena.add_owner([this](PieceIndex p) { handle_evicted(p); })),
      client_(hasher.open_client()),
      alive_(std::make_shared<bool>(true)) {}

ArenaStore::~ArenaStore() {
  shutdown();
  // Pieces in flight hold the store's own pin (writer or loader); return it so the arena can reclaim them.
  // Pieces pinned by outstanding PieceViews are released when those views go.
  for (PieceSlot& s : pieces_) {
    if (s.id.valid() && (s.state == State::assembling || s.state == State::hashing || s.loading)) drop(s.id);
  }
  arena_.remove_owner(owner_);
}

void ArenaStore::drop(ArenaId id) {
  arena_.unpin(id);
  arena_.free(id);
}

void ArenaStore::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  alive_.reset();
  hasher_.close_client(client_);
}

bool ArenaStore::has(PieceIndex p) const { return p < pieces_.size() && pieces_[p].state == State::had; }

bool ArenaStore::assembling(PieceIndex p) const {
  return p < pieces_.size() && pieces_[p].state == State::assembling;
}

Result<void> ArenaStore::begin_piece(PieceIndex p) {
  if (p >= pieces_.size()) return make_error("piece index out of range");
  PieceSlot& s = pieces_[p];
  if (s.state != State::missing) return make_error("piece already had or in progress");
  if (s.id.valid()) {  // disk mode: a cached copy of a piece no longer had cannot exist, but be safe
    arena_.free(s.id);
    s.id = {};
    stats_.resident_bytes -= layout_.piece_size(p);
  }
  auto id = arena_.allocate(owner_, p, layout_.piece_size(p));
  if (!id) {
    ++stats_.failed_begins;
    return id.error();
  }
  s.id = *id;
  s.received = 0;
  s.state = State::assembling;
  stats_.resident_bytes += layout_.piece_size(p);
  ++stats_.assembling;
  arena_.set_behind(s.id, s.behind);
  const std::uint64_t first = static_cast<std::uint64_t>(p) * blocks_per_piece();
  for (std::uint64_t b = first; b < first + blocks_per_piece(); ++b) received_bits_[b / 64] &= ~(1ull << (b % 64));
  return {};
}

Result<bool> ArenaStore::write_block(PieceIndex p, std::uint32_t offset, std::span<const std::byte> data,
                                     std::uint32_t source) {
  if (p >= pieces_.size() || pieces_[p].state != State::assembling) return make_error("piece is not being assembled");
  PieceSlot& s = pieces_[p];
  const std::uint32_t psize = layout_.piece_size(p);
  if (offset % kBlockSize != 0 || offset >= psize) return make_error("block offset is not a block boundary");
  if (data.size() != std::min(kBlockSize, psize - offset)) return make_error("block has the wrong length");
  const BlockIndex b = offset / kBlockSize;
  const std::uint64_t bit = static_cast<std::uint64_t>(p) * blocks_per_piece() + b;
  const std::uint32_t nblocks = (psize + kBlockSize - 1) / kBlockSize;
  if (received_bits_[bit / 64] & (1ull << (bit % 64))) return s.received == nblocks;  // duplicate (end-game)
  received_bits_[bit / 64] |= 1ull << (bit % 64);
  const PieceBytes bytes = arena_.bytes(s.id);
  std::memcpy(bytes.block(b).data(), data.data(), data.size());
  arena_.block_tag(s.id, b) = source;
  ++s.received;
  return s.received == nblocks;
}

Result<void> ArenaStore::submit_piece(PieceIndex p, VerifyHandler done) {
  if (p >= pieces_.size() || pieces_[p].state != State::assembling) return make_error("piece is not being assembled");
  PieceSlot& s = pieces_[p];
  const std::uint32_t nblocks = (layout_.piece_size(p) + kBlockSize - 1) / kBlockSize;
  if (s.received != nblocks) return make_error("piece is missing blocks");
  s.state = State::hashing;
  --stats_.assembling;
  ++stats_.hashing;
  const PieceBytes bytes = arena_.bytes(s.id);
  const Sha1Digest expected = Sha1Digest::from_bytes(std::string_view(piece_hashes_).substr(p * 20ull, 20));
  const ArenaId id = s.id;
  std::weak_ptr<bool> alive = alive_;
  hasher_.run(client_, [this, p, id, bytes, expected, alive, done = std::move(done)]() mutable {
    // The store cannot be destroyed while this runs (close_client waits), so the hooks are safe to call here.
    const bool hash_ok = Hasher::digest(bytes) == expected;
    auto report = [this, p, id, hash_ok, alive, done = std::move(done)](Result<void> io) mutable {
      asio::post(hasher_.io(), [this, p, id, hash_ok, io = std::move(io), alive, done = std::move(done)]() mutable {
        if (alive.expired()) return;
        finish_verify(p, id, hash_ok, std::move(io), std::move(done));
      });
    };
    if (!hash_ok || !backed_by_disk()) return report({});
    // Written on a disk worker: this hash worker goes on to the next piece while the device takes this one.
    hasher_.run_io(client_, [this, p, bytes, report = std::move(report)]() mutable { report(persist(p, bytes)); });
  });
  return {};
}

void ArenaStore::finish_verify(PieceIndex p, ArenaId id, bool hash_ok, Result<void> io, VerifyHandler done) {
  PieceSlot& s = pieces_[p];
  VerifyResult r;
  r.piece = p;
  --stats_.hashing;
  if (hash_ok && io) {
    s.state = State::had;
    ++stats_.verified;
    ++stats_.pieces_had;
    arena_.set_behind(id, s.behind);
    arena_.unpin(id);  // the writer's pin: the piece is now evictable (memory) or a cached copy (disk)
  } else {
    if (!hash_ok) {
      r.outcome = VerifyResult::Outcome::hash_mismatch;
      ++stats_.hash_failures;
      const std::uint32_t nblocks = (layout_.piece_size(p) + kBlockSize - 1) / kBlockSize;
      for (BlockIndex b = 0; b < nblocks; ++b) r.sources.push_back(arena_.block_tag(id, b));
      std::sort(r.sources.begin(), r.sources.end());
      r.sources.erase(std::unique(r.sources.begin(), r.sources.end()), r.sources.end());
    } else {
      r.outcome = VerifyResult::Outcome::io_error;
      r.error = io.error().message;
    }
    s.state = State::missing;
    s.id = {};
    drop(id);
    stats_.resident_bytes -= layout_.piece_size(p);
  }
  if (done) done(r);
}

void ArenaStore::abandon_piece(PieceIndex p) {
  if (p >= pieces_.size() || pieces_[p].state != State::assembling) return;
  PieceSlot& s = pieces_[p];
  drop(s.id);
  s.id = {};
  s.state = State::missing;
  --stats_.assembling;
  stats_.resident_bytes -= layout_.piece_size(p);
  s.received = 0;
}

std::optional<PieceView> ArenaStore::try_view(PieceIndex p) {
  if (!has(p) || pieces_[p].loading || !arena_.alive(pieces_[p].id)) return std::nullopt;
  return PieceView(arena_, pieces_[p].id, p);
}

void ArenaStore::read_piece(PieceIndex p, ReadHandler done) {
  std::weak_ptr<bool> alive = alive_;
  auto deliver = [this, alive](ReadHandler h, Result<PieceView> r) {
    asio::post(hasher_.io(), [alive, h = std::move(h), r = std::move(r)]() mutable {
      if (!alive.expired()) h(std::move(r));
    });
  };
  if (auto v = try_view(p)) return deliver(std::move(done), std::move(*v));
  if (!has(p)) return deliver(std::move(done), make_error("piece not had"));
  PieceSlot& s = pieces_[p];
  waiters_.emplace_back(p, std::move(done));
  if (s.loading) return;
  auto id = arena_.allocate(owner_, p, layout_.piece_size(p));
  if (!id) {
    std::erase_if(waiters_, [&](auto& w) {
      if (w.first != p) return false;
      deliver(std::move(w.second), id.error());
      return true;
    });
    return;
  }
  s.loading = true;
  s.id = *id;
  stats_.resident_bytes += layout_.piece_size(p);
  const PieceBytes bytes = arena_.bytes(*id);
  const ArenaId aid = *id;
  hasher_.run_io(client_, [this, p, aid, bytes, alive] {
    Result<void> io = load(p, bytes);
    asio::post(hasher_.io(), [this, p, aid, io = std::move(io), alive]() mutable {
      if (!alive.expired()) finish_load(p, aid, std::move(io));
    });
  });
}

void ArenaStore::finish_load(PieceIndex p, ArenaId id, Result<void> io) {
  PieceSlot& s = pieces_[p];
  s.loading = false;
  std::vector<std::pair<PieceIndex, ReadHandler>> ready;
  std::erase_if(waiters_, [&](auto& w) {
    if (w.first != p) return false;
    ready.push_back(std::move(w));
    return true;
  });
  if (io) {
    arena_.set_behind(id, s.behind);
    for (auto& w : ready) w.second(PieceView(arena_, id, p));
    arena_.unpin(id);  // the loader's pin; the views keep theirs
  } else {
    drop(id);
    s.id = {};
    stats_.resident_bytes -= layout_.piece_size(p);
    // What was on disk is unreadable: the piece is no longer had, so it will be fetched again.
    if (s.state == State::had) {
      s.state = State::missing;
      --stats_.pieces_had;
      if (on_evicted_) on_evicted_(p);
    }
    for (auto& w : ready) w.second(io.error());
  }
}

void ArenaStore::hint_behind(PieceIndex p, bool behind) {
  if (p >= pieces_.size()) return;
  pieces_[p].behind = behind;
  if (pieces_[p].id.valid()) arena_.set_behind(pieces_[p].id, behind);
}

void ArenaStore::handle_evicted(PieceIndex p) {
  // Runs inside an arena call: only bookkeeping here, the engine hears about it through a post.
  if (p >= pieces_.size()) return;
  PieceSlot& s = pieces_[p];
  s.id = {};
  stats_.resident_bytes -= layout_.piece_size(p);
  ++stats_.evicted;
  if (backed_by_disk() || s.state != State::had) return;
  s.state = State::missing;
  --stats_.pieces_had;
  if (on_evicted_) {
    std::weak_ptr<bool> alive = alive_;
    asio::post(hasher_.io(), [this, p, alive] {
      if (!alive.expired() && on_evicted_) on_evicted_(p);
    });
  }
}

void ArenaStore::mark_had(PieceIndex p) {
  if (p >= pieces_.size() || pieces_[p].state == State::had) return;
  pieces_[p].state = State::had;
  ++stats_.pieces_had;
}

StoreStats ArenaStore::stats() const { return stats_; }

}  // namespace ph::storage
