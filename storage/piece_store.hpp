// PieceStore: the per-torrent storage interface the engine talks to, and PieceView, the RAII pin on one verified
// piece that the read path hands out. MemoryStore (memory_store.hpp) and DiskStore (disk_store.hpp) implement it;
// both assemble incoming pieces in the shared Arena, so the memory budget covers pieces in flight in either mode.
//
// The engine's flow, all on the io_context thread:
//   begin_piece(p)            take room for p (fails when the arena is full of pinned pieces: apply backpressure)
//   write_block(p, off, data) copy a received block in; returns true once every block of p is there
//   submit_piece(p, done)     SHA-1 on a worker; done(result) runs on the io thread: verified pieces are had, a failed
//                             piece is discarded and names the `source` tags of the blocks that made it up
//   try_view(p) / read_piece  views into verified bytes, pinned until the PieceView goes away
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"
#include "storage/arena.hpp"
#include "storage/file_layout.hpp"

namespace ph::storage {

// A pinned, read-only view of one verified piece. While it lives the bytes stay where they are (never evicted);
// destroying or reset()ing it returns the pin. Must not outlive the Arena; use it on the io thread only.
class PieceView {
 public:
  PieceView() = default;
  PieceView(Arena& arena, ArenaId id, PieceIndex piece);  // takes its own pin
  PieceView(PieceView&& o) noexcept;
  PieceView& operator=(PieceView&& o) noexcept;
  PieceView(const PieceView&) = delete;
  PieceView& operator=(const PieceView&) = delete;
  ~PieceView() { reset(); }

  void reset();
  explicit operator bool() const { return arena_ != nullptr; }
  PieceIndex piece() const { return piece_; }
  std::uint32_t size() const { return bytes_.size; }

  // Calls f(std::span<const std::byte>) for the contiguous runs of [offset, offset + length) (at most one per
  // 16 KiB block), so the HTTP server can send them as scatter/gather buffers without copying.
  template <class F>
  void for_each_segment(std::uint32_t offset, std::uint32_t length, F&& f) const {
    bytes_.for_each_segment(offset, length, [&](std::span<std::byte> s) { f(std::span<const std::byte>(s)); });
  }
  std::size_t copy_to(std::uint32_t offset, std::span<std::byte> out) const { return bytes_.copy_to(offset, out); }

 private:
  Arena* arena_ = nullptr;
  ArenaId id_;
  PieceIndex piece_ = 0;
  PieceBytes bytes_;
};

struct VerifyResult {
  enum class Outcome { verified, hash_mismatch, io_error, cancelled };
  PieceIndex piece = 0;
  Outcome outcome = Outcome::verified;
  std::vector<std::uint32_t> sources;  // hash_mismatch: the distinct `source` tags of the piece's blocks
  std::string error;                   // io_error: what failed (disk mode)
  bool ok() const { return outcome == Outcome::verified; }
};

using VerifyHandler = std::function<void(const VerifyResult&)>;
using ReadHandler = std::function<void(Result<PieceView>)>;
using EvictedHandler = std::function<void(PieceIndex)>;

struct StoreStats {
  std::uint32_t pieces_had = 0;
  std::uint32_t assembling = 0;         // pieces holding arena room and receiving blocks
  std::uint32_t hashing = 0;            // pieces submitted and not yet reported
  std::uint64_t resident_bytes = 0;     // bytes of this torrent's pieces in the arena (any state)
  std::uint64_t verified = 0;
  std::uint64_t hash_failures = 0;
  std::uint64_t evicted = 0;            // memory mode: pieces lost to eviction; disk mode: cache drops
  std::uint64_t failed_begins = 0;      // begin_piece refused for lack of room
};

class PieceStore {
 public:
  virtual ~PieceStore() = default;

  virtual const FileLayout& layout() const = 0;
  virtual bool has(PieceIndex p) const = 0;         // verified and readable (memory mode: still resident)
  virtual bool assembling(PieceIndex p) const = 0;  // begun, not yet submitted

  // Takes arena room for piece p. Errors: out of range, already had or in progress, or no room (backpressure).
  virtual Result<void> begin_piece(PieceIndex p) = 0;
  // Copies one block in. offset must be a multiple of 16 KiB and data the whole block (the last one may be
  // shorter). A duplicate block (end-game) is ignored. `source` tags the block (the engine's peer number) so that
  // a failed hash can name who sent it. Returns true once the piece has all its blocks.
  virtual Result<bool> write_block(PieceIndex p, std::uint32_t offset, std::span<const std::byte> data,
                                   std::uint32_t source = 0) = 0;
  // Hands a complete piece to the hasher; done runs later on the io thread (never inside this call).
  virtual Result<void> submit_piece(PieceIndex p, VerifyHandler done) = 0;
  // Drops a piece being assembled (seek, peer gone and nobody else has it). Ignored unless assembling.
  virtual void abandon_piece(PieceIndex p) = 0;

  // A view of p if it is verified and already in memory; nullopt otherwise.
  virtual std::optional<PieceView> try_view(PieceIndex p) = 0;
  // Like try_view, but disk mode loads the piece from disk into the arena first. The handler always runs later on
  // the io thread, with an error when the piece is not had or no room can be made.
  virtual void read_piece(PieceIndex p, ReadHandler done) = 0;

  // Picker hint: p is behind every playhead, so it is the first to go when room is needed.
  virtual void hint_behind(PieceIndex p, bool behind) = 0;
  // Memory mode: told (posted to the io thread) when a verified piece was evicted and is no longer had, so the
  // engine can stop advertising it (lt_donthave, BEP 6 rejects).
  virtual void set_evicted_handler(EvictedHandler h) = 0;

  virtual StoreStats stats() const = 0;
};

}  // namespace ph::storage
