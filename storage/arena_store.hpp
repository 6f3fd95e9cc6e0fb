// ArenaStore: the part of a PieceStore that memory and disk mode share: assembling pieces in the shared Arena,
// tracking which blocks arrived, verification on the Hasher, views and eviction bookkeeping. Disk mode plugs in
// through three hooks: persist (write a verified piece, on a disk worker), load (fill a piece from disk, on a disk
// worker) and backed_by_disk (an eviction then only drops a cached copy; in memory mode it loses the piece).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "storage/arena.hpp"
#include "storage/file_layout.hpp"
#include "storage/hasher.hpp"
#include "storage/piece_store.hpp"

namespace ph::storage {

class ArenaStore : public PieceStore {
 public:
  // piece_hashes: 20 bytes per piece, as in Metainfo::piece_hashes. Arena and Hasher must outlive the store.
  ArenaStore(Arena& arena, Hasher& hasher, FileLayout layout, std::string piece_hashes);
  ~ArenaStore() override;

  const FileLayout& layout() const override { return layout_; }
  bool has(PieceIndex p) const override;
  bool assembling(PieceIndex p) const override;
  Result<void> begin_piece(PieceIndex p) override;
  Result<bool> write_block(PieceIndex p, std::uint32_t offset, std::span<const std::byte> data,
                           std::uint32_t source = 0) override;
  Result<void> submit_piece(PieceIndex p, VerifyHandler done) override;
  void abandon_piece(PieceIndex p) override;
  std::optional<PieceView> try_view(PieceIndex p) override;
  void read_piece(PieceIndex p, ReadHandler done) override;
  void hint_behind(PieceIndex p, bool behind) override;
  void set_evicted_handler(EvictedHandler h) override { on_evicted_ = std::move(h); }
  StoreStats stats() const override;

 protected:
  enum class State : std::uint8_t { missing, assembling, hashing, had };
  struct PieceSlot {
    ArenaId id;            // valid while the piece holds arena room
    std::uint32_t received = 0;
    State state = State::missing;
    bool behind = false;
    bool loading = false;  // disk mode: being read back into the arena
  };

  // Disk mode: every verified piece is also written to disk (persist), so an eviction only drops a cached copy.
  virtual bool backed_by_disk() const { return false; }
  // Called on a disk worker after a piece hashed correctly, when backed_by_disk(); the piece stays pinned meanwhile.
  // Must be thread-safe.
  virtual Result<void> persist(PieceIndex, const PieceBytes&) { return {}; }
  // Called on a worker to fill a pinned arena piece from disk. Memory mode never loads.
  virtual Result<void> load(PieceIndex, const PieceBytes&) { return make_error("piece not had"); }

  // Disk mode: every had piece is also on disk, so the arena may evict this store's pieces first
  // (Arena::set_owner_backed).
  void set_backed() { arena_.set_owner_backed(owner_, true); }
  // Marks a piece had without arena room (disk mode after re-verifying what is on disk).
  void mark_had(PieceIndex p);
  Hasher& hasher() { return hasher_; }
  std::string_view piece_hashes() const { return piece_hashes_; }
  Hasher::ClientId client() const { return client_; }
  const std::shared_ptr<bool>& alive() const { return alive_; }
  // Stops the hasher client: call first thing in a derived destructor, so no worker runs a hook on a half-destroyed
  // object.
  void shutdown();

 private:
  std::uint32_t blocks_per_piece() const { return (layout_.piece_length() + kBlockSize - 1) / kBlockSize; }
  void handle_evicted(PieceIndex p);
  void drop(ArenaId id);  // returns the store's own pin and frees the piece
  void finish_verify(PieceIndex p, ArenaId id, bool hash_ok, Result<void> io, VerifyHandler done);
  void finish_load(PieceIndex p, ArenaId id, Result<void> io);

  Arena& arena_;
  Hasher& hasher_;
  FileLayout layout_;
  std::string piece_hashes_;
  std::vector<PieceSlot> pieces_;
  std::vector<std::uint64_t> received_bits_;  // one bit per block of the torrent, allocated once
  std::vector<std::pair<PieceIndex, ReadHandler>> waiters_;  // disk mode: reads waiting for a load
  OwnerId owner_;
  Hasher::ClientId client_;
  std::shared_ptr<bool> alive_;  // posted completions hold a weak_ptr: they do nothing once the store is gone
  EvictedHandler on_evicted_;
  StoreStats stats_;
  bool shut_down_ = false;
};

}  // namespace ph::storage
