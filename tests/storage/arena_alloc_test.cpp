// Arena steady state: once warmed up, allocating, writing, pinning, touching, evicting and freeing pieces makes no
// heap allocation at all. Global operator new is counted in this executable only.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "storage/arena.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define PH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PH_ASAN 1
#endif
#endif

namespace {
std::atomic<std::uint64_t> g_news{0};
}

// AddressSanitizer owns operator new in its builds (replacing it there mixes allocators), so the count is taken in
// the ordinary builds only; the sanitizer build still runs the same workload for memory errors.
#ifndef PH_ASAN
void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
constexpr bool kCounting = true;
#else
constexpr bool kCounting = false;
#endif

using namespace ph;
using namespace ph::storage;

TEST_CASE("arena steady state makes no heap allocation per piece or block", "[arena]") {
  auto created = Arena::create(256 * kBlockSize);
  REQUIRE(created.ok());
  Arena& arena = **created;
  std::uint64_t evicted = 0;
  const OwnerId o = arena.add_owner([&evicted](PieceIndex) { ++evicted; });
  std::mt19937 rng(7);
  std::vector<ArenaId> live;
  live.reserve(1024);
  // Pieces of two sizes (as two torrents would have), some kept pinned a while.
  auto cycle = [&](int rounds) {
    for (int i = 0; i < rounds; ++i) {
      const std::uint32_t bytes = (i % 3 == 0) ? 16 * kBlockSize : 4 * kBlockSize;
      auto id = arena.allocate(o, static_cast<PieceIndex>(i), bytes);
      if (!id) continue;
      arena.bytes(*id).block(0)[0] = std::byte{1};
      arena.unpin(*id);
      if (rng() % 4 == 0) arena.touch(*id);
      if (rng() % 8 == 0) arena.set_behind(*id, true);
      if (rng() % 5 == 0) {
        arena.pin(*id);
        arena.unpin(*id);
      }
      if (rng() % 7 == 0) arena.free(*id);
      if (live.size() < live.capacity()) live.push_back(*id);
    }
  };
  cycle(50000);  // warm-up: slots grow their block tables to the largest size they serve
  const std::uint64_t before = g_news.load();
  cycle(100000);
  const std::uint64_t during = g_news.load() - before;
  if (kCounting) {
    CHECK(during == 0);
  } else {
    WARN("sanitizer build: heap allocations are counted in the ordinary builds only");
  }
  CHECK(evicted > 10000);
}
