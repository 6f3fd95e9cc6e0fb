// Arena: the one bounded region of RAM that holds piece data for every torrent (TORRENT_MEMORY_LIMIT).
// It is reserved once with mmap and carved into 16 KiB blocks, so torrents with piece lengths from 16 KiB to 16 MiB
// share it without fragmentation (a piece's blocks need not be adjacent). It decides which piece to evict (LRU among
// unpinned pieces, those hinted "behind every playhead" first) and tells the owning store through its callback.
//
// Threading: every method runs on the io_context thread. The only exception is reading or writing the bytes of a
// piece that the caller keeps pinned (the hasher and the disk workers do that): a pinned piece is never moved, freed
// or evicted, and its block table is immutable while it lives. The arena's own committer thread only commits the
// pages of never-used blocks, which the io thread does not use before it is done (see commit_ahead).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::storage {

// The smallest page size: O_DIRECT alignment for disk writes and the stride at which fresh arena pages are touched.
inline constexpr std::size_t kPageBytes = 4096;

// A handle to one live piece in the arena. The generation makes stale handles harmless: an evicted or freed slot
// that is reused for another piece has a new generation, and every method checks it.
struct ArenaId {
  static constexpr std::uint32_t kNoSlot = 0xffffffffu;
  std::uint32_t slot = kNoSlot;
  std::uint32_t gen = 0;

  bool valid() const { return slot != kNoSlot; }
  bool operator==(const ArenaId&) const = default;
};

// Who owns a piece: each store registers once and receives eviction notices for its pieces.
using OwnerId = std::uint32_t;

// A read-only description of where a piece's bytes are: the blocks of one piece in order. Cheap to copy; valid only
// while the piece is pinned. Safe to read from a worker thread.
struct PieceBytes {
  std::byte* base = nullptr;               // the arena's region
  const std::uint32_t* blocks = nullptr;   // block numbers, one per 16 KiB of the piece
  std::uint32_t size = 0;                  // bytes in the piece

  std::uint32_t block_count() const { return (size + kBlockSize - 1) / kBlockSize; }
  std::span<std::byte> block(BlockIndex b) const {
    const std::uint32_t len = std::min<std::uint32_t>(kBlockSize, size - b * kBlockSize);
    return {base + static_cast<std::size_t>(blocks[b]) * kBlockSize, len};
  }
  // Calls f(std::span<std::byte>) for the contiguous runs covering [offset, offset + length) of the piece; at most
  // one call per 16 KiB block. The range is clamped to the piece.
  template <class F>
  void for_each_segment(std::uint32_t offset, std::uint32_t length, F&& f) const {
    if (offset >= size) return;
    std::uint32_t end = offset + std::min(length, size - offset);
    while (offset < end) {
      const BlockIndex b = offset / kBlockSize;
      const std::uint32_t in_block = offset % kBlockSize;
      const std::uint32_t take = std::min(end - offset, kBlockSize - in_block);
      f(std::span<std::byte>(base + static_cast<std::size_t>(blocks[b]) * kBlockSize + in_block, take));
      offset += take;
    }
  }
  // Copies [offset, offset + out.size()) into out; returns the number of bytes copied (clamped to the piece).
  std::size_t copy_to(std::uint32_t offset, std::span<std::byte> out) const;
};

struct ArenaStats {
  std::uint64_t capacity_bytes = 0;     // the budget, rounded down to whole blocks
  std::uint64_t used_bytes = 0;         // blocks held by live pieces (assembling, pinned or cached), in bytes
  std::uint64_t pinned_bytes = 0;       // blocks of pieces with at least one pin (pieces being assembled included)
  std::uint64_t evictable_bytes = 0;    // blocks of unpinned pieces, which allocation may evict
  std::uint64_t evictions = 0;          // pieces evicted to make room since creation
  std::uint64_t failed_allocations = 0; // allocations refused because nothing (enough) was evictable
  std::uint32_t live_pieces = 0;
};

class Arena {
 public:
  // Called after the arena evicted one of the owner's pieces (the piece's id is already invalid). It runs inside
  // allocate() or evict_one(): it must only update bookkeeping or post work, never call back into the arena.
  using EvictFn = std::function<void(PieceIndex piece)>;

  // Reserves budget_bytes (rounded down to whole 16 KiB blocks, at least one block) of address space. Physical
  // memory is committed only as blocks are first written, and never exceeds the budget.
  static Result<std::unique_ptr<Arena>> create(std::uint64_t budget_bytes);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  OwnerId add_owner(EvictFn on_evicted);
  // A backed owner keeps a copy of every piece elsewhere (disk mode): evicting its pieces loses nothing, so they go
  // first, and allocation recycles them rather than commit memory the arena has never used (see allocate()).
  void set_owner_backed(OwnerId owner, bool backed);
  // Frees every piece the owner still has (pinned ones when their last pin goes), without callbacks.
  void remove_owner(OwnerId owner);

  // Takes room for a piece of `bytes` (1 .. 64 MiB) for `owner`, evicting least-recently-used unpinned pieces as
  // needed: backed owners' pieces first, then pieces behind every playhead, then the rest. Blocks used before are
  // preferred to blocks never touched, and a backed piece is evicted rather than touch a new block: first-touch
  // page faults are the costliest part of receiving data on some machines, and RSS stays at the working set.
  // The new piece starts with one pin (the writer's). Fails, evicting nothing, when even evicting every unpinned
  // piece would not make room: the caller applies backpressure and retries later.
  Result<ArenaId> allocate(OwnerId owner, PieceIndex piece, std::uint32_t bytes);
  // Whether allocate(bytes) would succeed now (free room plus what eviction could make), for the picker's
  // backpressure: it asks before requesting blocks of a new piece.
  bool fits(std::uint32_t bytes) const;
  // Drops a piece now, or when its last pin goes. No eviction callback. Stale ids are ignored.
  void free(ArenaId id);

  void pin(ArenaId id);
  void unpin(ArenaId id);  // the last unpin makes the piece the most recently used of its list
  void touch(ArenaId id);  // marks an unpinned piece most recently used; pinned pieces are not in the LRU yet
  // Hint from the picker: the piece lies behind every playhead, so it goes before any other when room is needed.
  void set_behind(ArenaId id, bool behind);
  // Evicts the next victim (as allocate would) and calls its owner; false when nothing is evictable.
  bool evict_one();

  bool alive(ArenaId id) const;
  bool pinned(ArenaId id) const;
  PieceBytes bytes(ArenaId id) const;  // precondition: alive(id)
  // A per-block tag the owner may use while the piece lives (the stores record which peer sent each block).
  std::uint32_t& block_tag(ArenaId id, BlockIndex b);

  ArenaStats stats() const;
  std::uint32_t block_count() const { return block_count_; }

 private:
  enum class List : std::uint8_t { none, normal, behind, backed };
  struct Slot {
    std::vector<std::uint32_t> blocks;  // capacity kept when the slot is recycled: no allocation in steady state
    std::uint32_t gen = 0;
    OwnerId owner = 0;
    PieceIndex piece = 0;
    std::uint32_t bytes = 0;
    std::uint32_t pins = 0;
    std::uint32_t prev = ArenaId::kNoSlot;  // LRU links; `next` also links free slots
    std::uint32_t next = ArenaId::kNoSlot;
    List list = List::none;
    bool behind = false;
    bool live = false;
    bool doomed = false;  // freed while pinned: released at the last unpin
  };
  struct ListHead {
    std::uint32_t head = ArenaId::kNoSlot;  // least recently used
    std::uint32_t tail = ArenaId::kNoSlot;  // most recently used
  };
  static constexpr int kSlotClasses = 16;  // free slots bucketed by floor(log2(block table capacity))

  Arena(std::byte* base, std::uint32_t block_count);
  Slot* lookup(ArenaId id);
  const Slot* lookup(ArenaId id) const;
  ListHead& head_of(List l) { return l == List::behind ? behind_ : l == List::backed ? backed_ : normal_; }
  List list_for(const Slot& slot) const;
  // Free blocks that have been used before (the free list holds them above the never-used ones).
  std::uint32_t warm_free_blocks() const { return free_blocks_ - (block_count_ - cold_from_); }
  void link_tail(std::uint32_t s, List l);
  void unlink(std::uint32_t s);
  std::uint32_t take_slot(std::uint32_t nblocks);
  void release(std::uint32_t s);
  void evict(std::uint32_t s);
  void commit_ahead(std::uint32_t block);
  void committer_main();

  std::byte* base_;
  std::uint32_t block_count_;
  std::vector<std::uint32_t> block_link_;  // free block: next free block; allocated block: the owner's tag
  std::uint32_t free_head_ = ArenaId::kNoSlot;
  std::uint32_t free_blocks_ = 0;
  std::uint32_t cold_from_ = 0;            // blocks from here on have never been allocated
  std::uint32_t next_commit_check_ = 0;    // allocating this cold block (or beyond) runs commit_ahead again
  // Pages of never-used blocks are committed ahead of use by a thread of the arena's own (see commit_ahead),
  // started at the first commit.
  std::mutex commit_mutex_;
  std::condition_variable commit_cv_;     // the committer waits for a new target
  std::condition_variable committed_cv_;  // the io thread waits for the committer
  std::uint32_t committed_ = 0;           // blocks below this have their pages (guarded by commit_mutex_)
  std::uint32_t commit_target_ = 0;       // guarded by commit_mutex_
  bool commit_stop_ = false;              // guarded by commit_mutex_
  std::thread committer_;
  std::vector<Slot> slots_;                // reserved for block_count_ slots once: never reallocates
  std::uint32_t free_slots_[kSlotClasses];
  ListHead normal_, behind_, backed_;
  std::uint64_t evictable_blocks_ = 0;
  std::uint64_t pinned_blocks_ = 0;
  std::uint64_t evictions_ = 0;
  std::uint64_t failed_allocations_ = 0;
  std::uint32_t live_pieces_ = 0;
  std::vector<EvictFn> owners_;            // empty function = unused owner id
  std::vector<bool> owner_backed_;
  bool in_callback_ = false;
};

}  // namespace ph::storage
