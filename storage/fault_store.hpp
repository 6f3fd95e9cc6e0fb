// FaultStore: a PieceStore wrapper for tests that injects the failures real storage produces rarely: a full arena
// (begin_piece refused), corrupted blocks (the piece fails its hash and names the block's source), and reads that
// fail. Everything else is forwarded to the wrapped store, so the engine's tests exercise the real code paths.
#pragma once

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <vector>

#include "storage/piece_store.hpp"

namespace ph::storage {

class FaultStore final : public PieceStore {
 public:
  // io: where failed reads are reported (the store's io_context), as the real stores do.
  FaultStore(PieceStore& inner, asio::io_context& io) : inner_(inner), io_(io) {}

  void fail_next_begins(std::uint32_t n) { fail_begins_ = n; }     // "no room": backpressure
  void corrupt_next_blocks(std::uint32_t n) { corrupt_blocks_ = n; }  // flips one bit of each
  void fail_reads(bool on) { fail_reads_ = on; }                   // read_piece errors, try_view nothing
  std::uint32_t injected() const { return injected_; }

  const FileLayout& layout() const override { return inner_.layout(); }
  bool has(PieceIndex p) const override { return inner_.has(p); }
  bool assembling(PieceIndex p) const override { return inner_.assembling(p); }
  Result<void> begin_piece(PieceIndex p) override {
    if (fail_begins_ > 0) {
      --fail_begins_;
      ++injected_;
      return make_error("injected: memory budget full");
    }
    return inner_.begin_piece(p);
  }
  Result<bool> write_block(PieceIndex p, std::uint32_t offset, std::span<const std::byte> data,
                           std::uint32_t source = 0) override {
    if (corrupt_blocks_ > 0 && !data.empty()) {
      --corrupt_blocks_;
      ++injected_;
      scratch_.assign(data.begin(), data.end());
      scratch_[scratch_.size() / 2] ^= std::byte{0x10};
      return inner_.write_block(p, offset, scratch_, source);
    }
    return inner_.write_block(p, offset, data, source);
  }
  Result<void> submit_piece(PieceIndex p, VerifyHandler done) override { return inner_.submit_piece(p, std::move(done)); }
  void abandon_piece(PieceIndex p) override { inner_.abandon_piece(p); }
  std::optional<PieceView> try_view(PieceIndex p) override {
    if (fail_reads_) return std::nullopt;
    return inner_.try_view(p);
  }
  void read_piece(PieceIndex p, ReadHandler done) override {
    if (!fail_reads_) return inner_.read_piece(p, std::move(done));
    ++injected_;
    asio::post(io_, [done = std::move(done)] { done(make_error("injected: read failed")); });
  }
  void hint_behind(PieceIndex p, bool behind) override { inner_.hint_behind(p, behind); }
  void set_evicted_handler(EvictedHandler h) override { inner_.set_evicted_handler(std::move(h)); }
  StoreStats stats() const override { return inner_.stats(); }

 private:
  PieceStore& inner_;
  asio::io_context& io_;
  std::vector<std::byte> scratch_;
  std::uint32_t fail_begins_ = 0;
  std::uint32_t corrupt_blocks_ = 0;
  std::uint32_t injected_ = 0;
  bool fail_reads_ = false;
};

}  // namespace ph::storage
