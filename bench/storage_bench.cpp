// Storage benchmarks: arena allocate/evict rate, SHA-1 piece hashing per worker (compare with
// `openssl speed -evp sha1 -bytes 16384`), the hasher pool end to end, and memory-store read throughput.
#include <benchmark/benchmark.h>

#include <asio/io_context.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "net/sha1.hpp"
#include "storage/arena.hpp"
#include "storage/file_layout.hpp"
#include "storage/hasher.hpp"
#include "storage/memory_store.hpp"

using namespace ph;
using namespace ph::storage;

namespace {

std::unique_ptr<Arena> make_arena(std::uint64_t bytes) {
  auto a = Arena::create(bytes);
  if (!a) std::abort();
  return std::move(*a);
}

}  // namespace

// Steady state of a full arena: every allocation evicts the least recently used piece. Arg: piece size in blocks.
static void BM_ArenaAllocateEvict(benchmark::State& state) {
  const auto blocks = static_cast<std::uint32_t>(state.range(0));
  auto arena = make_arena(64u << 20);
  std::uint64_t evicted = 0;
  const OwnerId o = arena->add_owner([&](PieceIndex) { ++evicted; });
  PieceIndex p = 0;
  for (std::uint32_t i = 0; i < arena->block_count() / blocks; ++i) {  // fill it once
    auto id = arena->allocate(o, p++, blocks * kBlockSize);
    arena->unpin(*id);
  }
  for (auto _ : state) {
    auto id = arena->allocate(o, p++, blocks * kBlockSize);
    arena->unpin(*id);
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["evictions"] = static_cast<double>(evicted);
}
BENCHMARK(BM_ArenaAllocateEvict)->Arg(1)->Arg(16)->Arg(64);

// Allocate then free without eviction pressure, plus a pin/unpin and a touch: the bookkeeping the engine does.
static void BM_ArenaAllocatePinTouchFree(benchmark::State& state) {
  auto arena = make_arena(64u << 20);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  std::vector<ArenaId> ids;
  for (PieceIndex p = 0; p < 128; ++p) {
    auto id = arena->allocate(o, p, 16 * kBlockSize);
    arena->unpin(*id);
    ids.push_back(*id);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto id = arena->allocate(o, 1000, 16 * kBlockSize);
    arena->unpin(*id);
    arena->pin(ids[i % ids.size()]);
    arena->unpin(ids[i % ids.size()]);
    arena->touch(ids[(i * 7) % ids.size()]);
    arena->free(*id);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ArenaAllocatePinTouchFree);

// One worker's hashing rate over a piece scattered in 16 KiB arena blocks (what the hasher does). Arg: piece KiB.
static void BM_HashPieceOneWorker(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0) * 1024);
  auto arena = make_arena(bytes);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  auto id = arena->allocate(o, 0, bytes);
  const PieceBytes piece = arena->bytes(*id);
  std::mt19937 rng(1);
  for (BlockIndex b = 0; b < piece.block_count(); ++b) {
    for (auto& x : piece.block(b)) x = std::byte(rng() & 0xff);
  }
  for (auto _ : state) benchmark::DoNotOptimize(Hasher::digest(piece));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * bytes);
}
BENCHMARK(BM_HashPieceOneWorker)->Arg(16)->Arg(256)->Arg(1024)->Arg(4096);

// The baseline next to `openssl speed -evp sha1 -bytes 16384`: one-shot SHA-1 of a contiguous 16 KiB buffer.
static void BM_Sha1Contiguous16K(benchmark::State& state) {
  std::vector<std::byte> buf(16384);
  std::mt19937 rng(2);
  for (auto& x : buf) x = std::byte(rng() & 0xff);
  for (auto _ : state) benchmark::DoNotOptimize(Sha1::of(std::span<const std::byte>(buf)));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 16384);
}
BENCHMARK(BM_Sha1Contiguous16K);

// The hasher pool end to end: submit 1 MiB pieces, results posted back to the io_context. Arg: workers.
static void BM_HasherPool(benchmark::State& state) {
  const auto workers = static_cast<unsigned>(state.range(0));
  constexpr std::uint32_t kPiece = 1u << 20;
  constexpr int kBatch = 16;
  asio::io_context io;
  auto arena = make_arena(std::uint64_t{kPiece} * kBatch);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  std::vector<PieceBytes> pieces;
  for (int i = 0; i < kBatch; ++i) {
    auto id = arena->allocate(o, static_cast<PieceIndex>(i), kPiece);
    const PieceBytes b = arena->bytes(*id);
    for (BlockIndex k = 0; k < b.block_count(); ++k) std::memset(b.block(k).data(), i + k, kBlockSize);
    pieces.push_back(b);
  }
  Hasher hasher(io, workers);
  const auto client = hasher.open_client();
  for (auto _ : state) {
    int done = 0;
    for (auto& p : pieces) hasher.verify(client, p, Sha1Digest{}, [&](bool) { ++done; });
    while (done < kBatch) {
      io.restart();
      io.run_one();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBatch * kPiece);
}
BENCHMARK(BM_HasherPool)->Arg(1)->Arg(2)->UseRealTime();

namespace {

// A memory store holding 64 verified 1 MiB pieces, for the read benchmarks.
struct ReadFixture {
  static constexpr std::uint32_t kPiece = 1u << 20;
  static constexpr std::uint32_t kPieces = 64;
  asio::io_context io;
  std::unique_ptr<Arena> arena = make_arena(std::uint64_t{kPiece} * kPieces);
  Hasher hasher{io, 1};
  std::unique_ptr<MemoryStore> store;

  ReadFixture() {
    std::vector<std::byte> data(kPiece);
    std::string hashes;
    for (PieceIndex p = 0; p < kPieces; ++p) {
      std::memset(data.data(), static_cast<int>(p), data.size());
      hashes += std::string(Sha1::of(std::span<const std::byte>(data)).view());
    }
    auto layout = FileLayout::make(kPiece, kPieces, {{std::uint64_t{kPiece} * kPieces, 0, false}});
    store = std::make_unique<MemoryStore>(*arena, hasher, std::move(*layout), hashes);
    int verified = 0;
    for (PieceIndex p = 0; p < kPieces; ++p) {
      std::memset(data.data(), static_cast<int>(p), data.size());
      (void)store->begin_piece(p);
      for (std::uint32_t off = 0; off < kPiece; off += kBlockSize) {
        (void)store->write_block(p, off, std::span<const std::byte>(data.data() + off, kBlockSize));
      }
      (void)store->submit_piece(p, [&](const VerifyResult& r) { verified += r.ok(); });
    }
    while (verified < static_cast<int>(kPieces)) {
      io.restart();
      io.run_one();
    }
  }
};

}  // namespace

// Zero-copy read path (what the HTTP server does): pin a piece, collect its segments as iovecs, unpin.
static void BM_MemoryStoreReadViews(benchmark::State& state) {
  ReadFixture f;
  PieceIndex p = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    auto v = f.store->try_view(p);
    v->for_each_segment(0, v->size(), [&](std::span<const std::byte> s) { sum += s.size() + std::size_t(s[0]); });
    p = (p + 1) % ReadFixture::kPieces;
  }
  benchmark::DoNotOptimize(sum);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * ReadFixture::kPiece);
}
BENCHMARK(BM_MemoryStoreReadViews);

// Copying read path: 64 KiB ranges copied out of pinned pieces (a reader that needs its own buffer).
static void BM_MemoryStoreReadCopy(benchmark::State& state) {
  ReadFixture f;
  std::vector<std::byte> out(64 * 1024);
  std::uint64_t pos = 0;
  const std::uint64_t total = std::uint64_t{ReadFixture::kPiece} * ReadFixture::kPieces;
  for (auto _ : state) {
    const auto p = static_cast<PieceIndex>(pos / ReadFixture::kPiece);
    auto v = f.store->try_view(p);
    benchmark::DoNotOptimize(v->copy_to(static_cast<std::uint32_t>(pos % ReadFixture::kPiece), out));
    pos = (pos + out.size()) % total;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_MemoryStoreReadCopy);
BENCHMARK_MAIN();
