// FaultStore: injected failures surface exactly as real ones do (refused begin, hash mismatch naming the source,
// failed reads), and without injections it is the wrapped store.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include "storage/arena.hpp"
#include "storage/fault_store.hpp"
#include "storage/hasher.hpp"
#include "storage/memory_store.hpp"
#include "store_fixture.hpp"

using namespace ph;
using namespace ph::storage;
using namespace ph::storage::test;

TEST_CASE("fault store injects refusals, corruption and read failures", "[fault_store]") {
  constexpr std::uint32_t kPiece = 2 * kBlockSize;
  Torrent t(kPiece, {{4 * kPiece, 0, false}}, 9);
  asio::io_context io;
  auto arena = Arena::create(8 * kPiece);
  REQUIRE(arena.ok());
  {
    Hasher hasher(io, 1);
    MemoryStore inner(**arena, hasher, t.layout(), t.hashes);
    FaultStore store(inner, io);
    auto download = [&](PieceIndex p, std::uint32_t source) {
      REQUIRE(store.begin_piece(p).ok());
      REQUIRE(store.write_block(p, 0, t.block(p, 0, kBlockSize), source).ok());
      REQUIRE(store.write_block(p, kBlockSize, t.block(p, kBlockSize, kBlockSize), source + 1).ok());
      std::optional<VerifyResult> r;
      REQUIRE(store.submit_piece(p, [&](const VerifyResult& v) { r = v; }).ok());
      REQUIRE(run_until(io, [&] { return r.has_value(); }));
      return *r;
    };
    store.fail_next_begins(1);
    CHECK_FALSE(store.begin_piece(0).ok());
    CHECK(download(0, 1).ok());
    store.corrupt_next_blocks(1);
    auto bad = download(1, 5);
    CHECK(bad.outcome == VerifyResult::Outcome::hash_mismatch);
    CHECK(bad.sources == std::vector<std::uint32_t>{5, 6});
    CHECK_FALSE(store.has(1));
    CHECK(download(1, 5).ok());
    store.fail_reads(true);
    CHECK_FALSE(store.try_view(0).has_value());
    std::optional<Result<PieceView>> got;
    store.read_piece(0, [&](Result<PieceView> r) { got.emplace(std::move(r)); });
    REQUIRE(run_until(io, [&] { return got.has_value(); }));
    CHECK_FALSE(got->ok());
    store.fail_reads(false);
    CHECK(store.try_view(0).has_value());
    CHECK(store.injected() == 3);
  }
  CHECK((*arena)->stats().used_bytes == 0);
}
