// MemoryStore and Hasher: assembly, verification off the io thread, hash failures naming their sources,
// backpressure, eviction (LRU, behind-the-playhead first, pinned views kept), teardown with work in flight, and
// that memory mode creates no file or folder.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <thread>

#include "storage/arena.hpp"
#include "storage/hasher.hpp"
#include "storage/memory_store.hpp"
#include "store_fixture.hpp"

using namespace ph;
using namespace ph::storage;
using namespace ph::storage::test;

namespace {

constexpr std::uint32_t kPiece = 4 * kBlockSize;  // 64 KiB pieces

struct Rig {
  asio::io_context io;
  std::unique_ptr<Arena> arena;
  std::unique_ptr<Hasher> hasher;
  Torrent torrent;
  std::unique_ptr<MemoryStore> store;

  Rig(std::uint32_t arena_pieces, std::uint64_t total_bytes, unsigned workers = 2)
      : torrent(kPiece, {{total_bytes, 0, false}}) {
    auto a = Arena::create(std::uint64_t{arena_pieces} * kPiece);
    REQUIRE(a.ok());
    arena = std::move(*a);
    hasher = std::make_unique<Hasher>(io, workers);
    store = std::make_unique<MemoryStore>(*arena, *hasher, torrent.layout(), torrent.hashes);
  }
  ~Rig() {
    store.reset();
    hasher.reset();
  }

  // Writes every block of p; returns whether the last write reported the piece complete.
  bool fill(PieceIndex p, std::uint32_t source = 1) {
    const std::uint32_t size = store->layout().piece_size(p);
    bool complete = false;
    for (std::uint32_t off = 0; off < size; off += kBlockSize) {
      const std::uint32_t len = std::min(kBlockSize, size - off);
      auto r = store->write_block(p, off, torrent.block(p, off, len), source);
      REQUIRE(r.ok());
      complete = *r;
    }
    return complete;
  }
  VerifyResult download(PieceIndex p) {
    REQUIRE(store->begin_piece(p).ok());
    REQUIRE(fill(p));
    std::optional<VerifyResult> got;
    REQUIRE(store->submit_piece(p, [&](const VerifyResult& r) { got = r; }).ok());
    REQUIRE(run_until(io, [&] { return got.has_value(); }));
    return *got;
  }
  std::vector<std::byte> read_all(PieceView& v) {
    std::vector<std::byte> out;
    v.for_each_segment(0, v.size(), [&](std::span<const std::byte> s) { out.insert(out.end(), s.begin(), s.end()); });
    return out;
  }
  std::vector<std::byte> expected(PieceIndex p) {
    auto b = torrent.block(p, 0, store->layout().piece_size(p));
    return {b.begin(), b.end()};
  }
};

}  // namespace

TEST_CASE("hasher verifies on workers and posts the result to the io thread", "[hasher]") {
  asio::io_context io;
  auto arena = Arena::create(8 * kBlockSize);
  REQUIRE(arena.ok());
  Hasher hasher(io, 2);
  CHECK(hasher.workers() == 2);
  CHECK(Hasher::default_workers() >= 1);
  const OwnerId o = (*arena)->add_owner([](PieceIndex) {});
  auto id = (*arena)->allocate(o, 0, 3 * kBlockSize - 5);
  REQUIRE(id.ok());
  PieceBytes bytes = (*arena)->bytes(*id);
  std::string flat;
  for (std::uint32_t i = 0; i < bytes.size; ++i) flat.push_back(static_cast<char>(i * 7));
  for (BlockIndex b = 0; b < bytes.block_count(); ++b) {
    std::memcpy(bytes.block(b).data(), flat.data() + b * kBlockSize, bytes.block(b).size());
  }
  const auto io_thread = std::this_thread::get_id();
  std::optional<bool> good, bad;
  bool on_io_thread = true;
  const auto client = hasher.open_client();
  hasher.verify(client, bytes, Sha1::of(flat), [&](bool ok) {
    on_io_thread = on_io_thread && std::this_thread::get_id() == io_thread;
    good = ok;
  });
  hasher.verify(client, bytes, Sha1::of("something else"), [&](bool ok) { bad = ok; });
  REQUIRE(run_until(io, [&] { return good && bad; }));
  CHECK(*good);
  CHECK_FALSE(*bad);
  CHECK(on_io_thread);
  CHECK(Hasher::digest(bytes) == Sha1::of(flat));
}

TEST_CASE("hasher: closing a client drops its queued jobs and waits for its running ones", "[hasher]") {
  asio::io_context io;
  Hasher hasher(io, 1);
  const auto a = hasher.open_client();
  const auto b = hasher.open_client();
  std::atomic<int> ran_a{0}, ran_b{0};
  std::atomic<bool> started{false};
  hasher.run(a, [&] {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ++ran_a;
  });
  for (int i = 0; i < 10; ++i) hasher.run(a, [&] { ++ran_a; });
  hasher.run(b, [&] { ++ran_b; });
  while (!started) std::this_thread::yield();
  hasher.close_client(a);  // the running job finishes before this returns; the 10 queued never run
  CHECK(ran_a == 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ran_b == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(ran_b == 1);
  CHECK(ran_a == 1);
}

TEST_CASE("hasher: disk jobs have their own workers, and closing a client waits for them too", "[hasher]") {
  asio::io_context io;
  Hasher hasher(io, 1, 1);
  const auto client = hasher.open_client();
  std::atomic<bool> disk_started{false}, release_disk{false}, disk_done{false};
  std::atomic<int> hashed{0};
  std::thread::id disk_thread, hash_thread;
  hasher.run_io(client, [&] {
    disk_thread = std::this_thread::get_id();
    disk_started = true;
    while (!release_disk) std::this_thread::yield();  // a write waiting for a slow device
    disk_done = true;
  });
  while (!disk_started) std::this_thread::yield();
  // Hashing goes on while the disk worker is blocked.
  for (int i = 0; i < 3; ++i) hasher.run(client, [&] {
    hash_thread = std::this_thread::get_id();
    ++hashed;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (hashed < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(hashed == 3);
  CHECK(hash_thread != disk_thread);
  CHECK_FALSE(disk_done);
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    release_disk = true;
  });
  hasher.close_client(client);  // returns only once the disk job has finished
  CHECK(disk_done);
  releaser.join();
}

TEST_CASE("memory store: download, verify and read back byte-identical", "[memory_store]") {
  Rig rig(16, 5 * kPiece + 12345);  // short last piece with a short last block
  const auto& layout = rig.store->layout();
  REQUIRE(layout.piece_count() == 6);
  for (PieceIndex p = 0; p < layout.piece_count(); ++p) {
    CHECK_FALSE(rig.store->has(p));
    auto r = rig.download(p);
    CHECK(r.ok());
    CHECK(rig.store->has(p));
  }
  CHECK(rig.store->stats().pieces_had == 6);
  CHECK(rig.store->stats().verified == 6);
  for (PieceIndex p = 0; p < layout.piece_count(); ++p) {
    auto v = rig.store->try_view(p);
    REQUIRE(v.has_value());
    CHECK(v->size() == layout.piece_size(p));
    CHECK(rig.read_all(*v) == rig.expected(p));
  }
  // The async read path gives the same bytes, later, on the io thread.
  std::optional<Result<PieceView>> got;
  rig.store->read_piece(5, [&](Result<PieceView> r) { got.emplace(std::move(r)); });
  CHECK_FALSE(got.has_value());  // never inside the call
  REQUIRE(run_until(rig.io, [&] { return got.has_value(); }));
  REQUIRE(got->ok());
  CHECK(rig.read_all(**got) == rig.expected(5));
  // A sub-range copy across a block boundary.
  std::vector<std::byte> part(100);
  auto v = rig.store->try_view(2);
  REQUIRE(v.has_value());
  CHECK(v->copy_to(kBlockSize - 50, part) == 100);
  CHECK(std::equal(part.begin(), part.end(), rig.expected(2).begin() + kBlockSize - 50));
}

TEST_CASE("memory store: write errors and duplicates", "[memory_store]") {
  Rig rig(4, 2 * kPiece);
  std::array<std::byte, kBlockSize> block{};
  CHECK_FALSE(rig.store->write_block(0, 0, block, 1).ok());  // not begun
  CHECK_FALSE(rig.store->begin_piece(2).ok());               // out of range
  REQUIRE(rig.store->begin_piece(0).ok());
  CHECK_FALSE(rig.store->begin_piece(0).ok());  // already in progress
  CHECK(rig.store->assembling(0));
  CHECK_FALSE(rig.store->write_block(0, 100, block, 1).ok());                                // not a block boundary
  CHECK_FALSE(rig.store->write_block(0, kPiece, block, 1).ok());                             // past the piece
  CHECK_FALSE(rig.store->write_block(0, 0, std::span(block).first(100), 1).ok());            // short block
  CHECK_FALSE(rig.store->submit_piece(0, [](const VerifyResult&) {}).ok());                 // incomplete
  auto first = rig.store->write_block(0, 0, rig.torrent.block(0, 0, kBlockSize), 1);
  REQUIRE(first.ok());
  CHECK_FALSE(*first);
  auto dup = rig.store->write_block(0, 0, block, 2);  // end-game duplicate: ignored, first copy kept
  REQUIRE(dup.ok());
  CHECK_FALSE(*dup);
  for (std::uint32_t off = kBlockSize; off < kPiece; off += kBlockSize) {
    REQUIRE(rig.store->write_block(0, off, rig.torrent.block(0, off, kBlockSize), 1).ok());
  }
  std::optional<VerifyResult> r;
  REQUIRE(rig.store->submit_piece(0, [&](const VerifyResult& v) { r = v; }).ok());
  CHECK_FALSE(rig.store->assembling(0));
  REQUIRE(run_until(rig.io, [&] { return r.has_value(); }));
  CHECK(r->ok());
  CHECK_FALSE(rig.store->begin_piece(0).ok());  // already had
}

TEST_CASE("memory store: a corrupt piece is discarded and names its sources", "[memory_store]") {
  Rig rig(4, 2 * kPiece);
  REQUIRE(rig.store->begin_piece(1).ok());
  std::vector<std::byte> bad(rig.torrent.block(1, kBlockSize, kBlockSize).begin(),
                             rig.torrent.block(1, kBlockSize, kBlockSize).end());
  bad[10] ^= std::byte{1};
  for (std::uint32_t off = 0; off < kPiece; off += kBlockSize) {
    const bool corrupt = off == kBlockSize;
    auto data = corrupt ? std::span<const std::byte>(bad) : rig.torrent.block(1, off, kBlockSize);
    REQUIRE(rig.store->write_block(1, off, data, corrupt ? 7 : 3).ok());
  }
  std::optional<VerifyResult> r;
  REQUIRE(rig.store->submit_piece(1, [&](const VerifyResult& v) { r = v; }).ok());
  REQUIRE(run_until(rig.io, [&] { return r.has_value(); }));
  CHECK(r->outcome == VerifyResult::Outcome::hash_mismatch);
  CHECK(r->sources == std::vector<std::uint32_t>{3, 7});
  CHECK_FALSE(rig.store->has(1));
  CHECK(rig.store->stats().hash_failures == 1);
  CHECK(rig.arena->stats().used_bytes == 0);  // discarded
  CHECK(rig.store->stats().resident_bytes == 0);
  CHECK(rig.store->stats().hashing == 0);
  CHECK(rig.download(1).ok());                // and fetched again
}

TEST_CASE("memory store: no room means backpressure, never an overrun", "[memory_store]") {
  Rig rig(2, 4 * kPiece);
  REQUIRE(rig.store->begin_piece(0).ok());
  REQUIRE(rig.store->begin_piece(1).ok());
  auto third = rig.store->begin_piece(2);
  CHECK_FALSE(third.ok());
  CHECK(rig.store->stats().failed_begins == 1);
  CHECK(rig.arena->stats().used_bytes == rig.arena->stats().capacity_bytes);
  rig.store->abandon_piece(1);
  CHECK_FALSE(rig.store->assembling(1));
  CHECK(rig.store->begin_piece(2).ok());
  CHECK(rig.store->stats().assembling == 2);
  CHECK(rig.store->stats().resident_bytes == rig.arena->stats().used_bytes);
}

TEST_CASE("memory store: eviction takes the LRU unpinned piece, behind hints first, views stay", "[memory_store]") {
  Rig rig(3, 8 * kPiece);
  std::vector<PieceIndex> evicted;
  rig.store->set_evicted_handler([&](PieceIndex p) { evicted.push_back(p); });
  for (PieceIndex p = 0; p < 3; ++p) REQUIRE(rig.download(p).ok());
  auto held = rig.store->try_view(0);  // a reader holds piece 0: pinned
  REQUIRE(held.has_value());
  REQUIRE(rig.download(3).ok());  // evicts piece 1 (LRU among unpinned)
  REQUIRE(run_until(rig.io, [&] { return evicted.size() == 1; }));
  CHECK(evicted == std::vector<PieceIndex>{1});
  CHECK_FALSE(rig.store->has(1));
  CHECK(rig.store->has(0));
  rig.store->hint_behind(3, true);  // 3 is behind the playhead: it goes before 2
  REQUIRE(rig.download(4).ok());
  REQUIRE(run_until(rig.io, [&] { return evicted.size() == 2; }));
  CHECK(evicted.back() == 3);
  CHECK(rig.read_all(*held) == rig.expected(0));  // never moved while pinned
  // Reading a piece that is no longer had fails cleanly.
  std::optional<Result<PieceView>> got;
  rig.store->read_piece(1, [&](Result<PieceView> r) { got.emplace(std::move(r)); });
  REQUIRE(run_until(rig.io, [&] { return got.has_value(); }));
  CHECK_FALSE(got->ok());
  held.reset();
  CHECK(rig.arena->stats().pinned_bytes == 0);
  CHECK(rig.store->stats().evicted == 2);
  CHECK(rig.store->stats().resident_bytes == 3 * kPiece);
  CHECK(rig.store->stats().resident_bytes == rig.arena->stats().used_bytes);
  CHECK(rig.store->stats().pieces_had == 3);
}

TEST_CASE("memory store: destroyed with hashing in flight, nothing runs afterwards", "[memory_store]") {
  Rig rig(16, 16 * kPiece, 1);
  int reported = 0;
  for (PieceIndex p = 0; p < 16; ++p) {
    REQUIRE(rig.store->begin_piece(p).ok());
    rig.fill(p);
    REQUIRE(rig.store->submit_piece(p, [&](const VerifyResult&) { ++reported; }).ok());
  }
  std::optional<PieceView> none = rig.store->try_view(0);
  CHECK_FALSE(none.has_value());
  rig.store.reset();
  rig.io.restart();
  rig.io.run_for(std::chrono::milliseconds(200));
  CHECK(reported == 0);
  CHECK(rig.arena->stats().used_bytes == 0);
}

TEST_CASE("memory mode creates no file and no folder", "[memory_store]") {
  TempDir dir;
  const auto old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path);  // any relative path the store might wrongly use lands here
  {
    Rig rig(3, 10 * kPiece + 1);
    std::vector<PieceIndex> evicted;
    rig.store->set_evicted_handler([&](PieceIndex p) { evicted.push_back(p); });
    // Stream the whole torrent end to end through a 3-piece budget, reading each piece as a player would.
    for (PieceIndex p = 0; p < rig.store->layout().piece_count(); ++p) {
      REQUIRE(rig.download(p).ok());
      std::optional<Result<PieceView>> got;
      rig.store->read_piece(p, [&](Result<PieceView> r) { got.emplace(std::move(r)); });
      REQUIRE(run_until(rig.io, [&] { return got.has_value(); }));
      REQUIRE(got->ok());
      CHECK(rig.read_all(**got) == rig.expected(p));
    }
    CHECK(rig.arena->stats().evictions >= 8);
  }
  std::filesystem::current_path(old_cwd);
  CHECK(entries_under(dir.path) == 0);
  CHECK_FALSE(std::filesystem::exists(dir.path / "downloads"));
}
