// Arena: unit cases, and the 1,000,000-operation property test against a plain model of the budget, pins and the
// two LRU lists.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "storage/arena.hpp"

using namespace ph;
using namespace ph::storage;

namespace {

std::unique_ptr<Arena> make_arena(std::uint32_t blocks) {
  auto a = Arena::create(std::uint64_t{blocks} * kBlockSize);
  REQUIRE(a.ok());
  return std::move(*a);
}

}  // namespace

TEST_CASE("arena rounds the budget to blocks and reports stats", "[arena]") {
  auto a = Arena::create(10 * kBlockSize + 5);
  REQUIRE(a.ok());
  Arena& arena = **a;
  CHECK(arena.block_count() == 10);
  const OwnerId o = arena.add_owner([](PieceIndex) {});
  auto id = arena.allocate(o, 7, 3 * kBlockSize + 1);
  REQUIRE(id.ok());
  auto s = arena.stats();
  CHECK(s.capacity_bytes == 10 * kBlockSize);
  CHECK(s.used_bytes == 4 * kBlockSize);
  CHECK(s.pinned_bytes == 4 * kBlockSize);  // a new piece carries the writer's pin
  CHECK(s.live_pieces == 1);
  CHECK(arena.bytes(*id).size == 3 * kBlockSize + 1);
  CHECK(arena.bytes(*id).block_count() == 4);
  arena.unpin(*id);
  s = arena.stats();
  CHECK(s.pinned_bytes == 0);
  CHECK(s.evictable_bytes == 4 * kBlockSize);
  arena.free(*id);
  CHECK(arena.stats().used_bytes == 0);
  CHECK_FALSE(arena.alive(*id));
}

TEST_CASE("arena commits pages ahead of use, within the budget", "[arena]") {
  // 64 MiB budget; pieces of 1 MiB. The committer keeps 32 MiB ahead of the blocks in use, never past the budget.
  constexpr std::uint32_t kBlocks = 4096, kPieceBlocks = 64;
  auto arena = make_arena(kBlocks);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::byte* base = nullptr;
  auto resident_pages = [&](std::uint32_t from_block, std::uint32_t to_block) {
    std::vector<unsigned char> v((std::size_t{to_block - from_block} * kBlockSize + page - 1) / page);
    REQUIRE(::mincore(base + std::size_t{from_block} * kBlockSize, std::size_t{to_block - from_block} * kBlockSize,
                      v.data()) == 0);
    return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [](unsigned char c) { return c & 1; }));
  };
  std::vector<ArenaId> ids;
  for (PieceIndex p = 0; p < kBlocks / kPieceBlocks; ++p) {
    auto id = arena->allocate(o, p, kPieceBlocks * kBlockSize);
    REQUIRE(id.ok());
    const PieceBytes bytes = arena->bytes(*id);
    base = bytes.base;
    // Every block handed out is already committed: the io thread never takes the first-touch faults.
    CHECK(resident_pages(bytes.blocks[0], bytes.blocks[0] + kPieceBlocks) == kPieceBlocks * kBlockSize / page);
    std::memset(bytes.block(0).data(), 0xab, kBlockSize);
    ids.push_back(*id);
    if (p == 0) CHECK(resident_pages(kBlocks / 2, kBlocks) == 0);  // 32 MiB ahead of block 0, no further
  }
  CHECK(resident_pages(0, kBlocks) == std::size_t{kBlocks} * kBlockSize / page);
  for (auto id : ids) CHECK(static_cast<unsigned char>(arena->bytes(id).block(0)[0]) == 0xab);
}

TEST_CASE("arena recycles a backed owner's pieces before touching never-used blocks", "[arena]") {
  auto arena = make_arena(8);
  std::vector<PieceIndex> evicted;
  const OwnerId memory = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  const OwnerId disk = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  arena->set_owner_backed(disk, true);
  auto cached = arena->allocate(disk, 1, 2 * kBlockSize);  // blocks 0 and 1, then only a cached copy
  REQUIRE(cached.ok());
  arena->unpin(*cached);
  // Six blocks were never used: rather than commit them, the disk-backed copy is recycled.
  auto first = arena->allocate(memory, 10, 2 * kBlockSize);
  REQUIRE(first.ok());
  CHECK(evicted == std::vector<PieceIndex>{1});
  CHECK(arena->bytes(*first).blocks[0] == 0);
  CHECK(arena->bytes(*first).blocks[1] == 1);
  arena->unpin(*first);
  // Nothing backed to recycle: new blocks are used, and the memory-only piece (its only copy) is kept.
  auto second = arena->allocate(disk, 2, 2 * kBlockSize);
  REQUIRE(second.ok());
  CHECK(arena->bytes(*second).blocks[0] == 2);
  arena->unpin(*second);
  auto big = arena->allocate(memory, 11, 5 * kBlockSize);  // recycles piece 2, then takes three new blocks
  REQUIRE(big.ok());
  CHECK(evicted == std::vector<PieceIndex>{1, 2});
  CHECK(arena->alive(*first));
  // Full: only now is a memory-only piece evicted.
  auto last = arena->allocate(memory, 12, 2 * kBlockSize);
  REQUIRE(last.ok());
  CHECK(evicted == std::vector<PieceIndex>{1, 2, 10});
}

TEST_CASE("arena evicts backed pieces before pieces behind the playhead and the rest", "[arena]") {
  auto arena = make_arena(3);
  std::vector<PieceIndex> evicted;
  const OwnerId memory = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  const OwnerId disk = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  arena->set_owner_backed(disk, true);
  auto normal = arena->allocate(memory, 1, kBlockSize);
  auto behind = arena->allocate(memory, 2, kBlockSize);
  auto backed = arena->allocate(disk, 3, kBlockSize);
  REQUIRE((normal.ok() && behind.ok() && backed.ok()));
  arena->set_behind(*behind, true);
  arena->unpin(*normal);
  arena->unpin(*behind);
  arena->unpin(*backed);
  arena->touch(*backed);  // the most recently used, and still the first to go
  for (PieceIndex p = 10; p < 13; ++p) REQUIRE(arena->allocate(memory, p, kBlockSize).ok());
  CHECK(evicted == std::vector<PieceIndex>{3, 2, 1});
}

TEST_CASE("arena refuses bad sizes and unknown owners", "[arena]") {
  auto arena = make_arena(4);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  CHECK_FALSE(arena->allocate(o, 0, 0).ok());
  CHECK_FALSE(arena->allocate(o, 0, (64u << 20) + 1).ok());
  CHECK_FALSE(arena->allocate(o + 1, 0, 100).ok());
  CHECK_FALSE(arena->allocate(o, 0, 5 * kBlockSize).ok());  // larger than the whole budget
  CHECK(arena->stats().failed_allocations == 1);
}

TEST_CASE("arena fails cleanly when everything is pinned, evicting nothing", "[arena]") {
  auto arena = make_arena(4);
  std::vector<PieceIndex> evicted;
  const OwnerId o = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  auto a = arena->allocate(o, 1, 2 * kBlockSize);
  auto b = arena->allocate(o, 2, kBlockSize);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  arena->unpin(*b);  // b is evictable, a is still pinned
  auto c = arena->allocate(o, 3, 2 * kBlockSize);  // 1 free + 1 evictable = 2: fits after evicting b
  REQUIRE(c.ok());
  CHECK(evicted == std::vector<PieceIndex>{2});
  CHECK_FALSE(arena->fits(kBlockSize));
  auto d = arena->allocate(o, 4, kBlockSize);  // 0 free, 0 evictable
  CHECK_FALSE(d.ok());
  CHECK(arena->stats().failed_allocations == 1);
  CHECK(arena->alive(*a));
  CHECK(arena->alive(*c));
  CHECK(arena->stats().evictions == 1);
}

TEST_CASE("arena evicts behind-the-playhead pieces first, then least recently used", "[arena]") {
  auto arena = make_arena(4);
  std::vector<PieceIndex> evicted;
  const OwnerId o = arena->add_owner([&](PieceIndex p) { evicted.push_back(p); });
  std::vector<ArenaId> ids;
  for (PieceIndex p = 0; p < 4; ++p) {
    auto id = arena->allocate(o, p, kBlockSize);
    REQUIRE(id.ok());
    arena->unpin(*id);
    ids.push_back(*id);
  }
  arena->touch(ids[0]);              // LRU order now 1 2 3 0
  arena->set_behind(ids[3], true);   // 3 goes first
  for (PieceIndex p = 10; p < 14; ++p) REQUIRE(arena->allocate(o, p, kBlockSize).ok());
  CHECK(evicted == std::vector<PieceIndex>{3, 1, 2, 0});
}

TEST_CASE("arena: a piece freed while pinned goes when its last pin does", "[arena]") {
  auto arena = make_arena(2);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  auto id = arena->allocate(o, 1, kBlockSize);
  REQUIRE(id.ok());
  arena->pin(*id);  // two pins: the writer's and a reader's
  arena->free(*id);
  CHECK_FALSE(arena->alive(*id));
  CHECK(arena->stats().used_bytes == kBlockSize);
  arena->unpin(*id);
  CHECK(arena->stats().used_bytes == kBlockSize);
  arena->unpin(*id);
  CHECK(arena->stats().used_bytes == 0);
  CHECK(arena->stats().live_pieces == 0);
}

TEST_CASE("arena: remove_owner frees only that owner's pieces", "[arena]") {
  auto arena = make_arena(8);
  const OwnerId a = arena->add_owner([](PieceIndex) {});
  const OwnerId b = arena->add_owner([](PieceIndex) {});
  auto a1 = arena->allocate(a, 1, kBlockSize);
  auto b1 = arena->allocate(b, 1, 2 * kBlockSize);
  REQUIRE(a1.ok());
  REQUIRE(b1.ok());
  arena->remove_owner(a);  // a1 is pinned: it is released at its last unpin
  CHECK(arena->stats().used_bytes == 3 * kBlockSize);
  arena->unpin(*a1);
  CHECK(arena->stats().used_bytes == 2 * kBlockSize);
  CHECK(arena->alive(*b1));
  const OwnerId c = arena->add_owner([](PieceIndex) {});
  CHECK(c == a);  // owner ids are reused
}

TEST_CASE("arena: block tags and stale ids", "[arena]") {
  auto arena = make_arena(4);
  const OwnerId o = arena->add_owner([](PieceIndex) {});
  auto id = arena->allocate(o, 1, 2 * kBlockSize);
  REQUIRE(id.ok());
  arena->block_tag(*id, 0) = 11;
  arena->block_tag(*id, 1) = 22;
  CHECK(arena->block_tag(*id, 0) == 11);
  CHECK(arena->block_tag(*id, 1) == 22);
  arena->unpin(*id);
  arena->free(*id);
  auto again = arena->allocate(o, 2, kBlockSize);  // reuses the slot with a new generation
  REQUIRE(again.ok());
  CHECK(again->slot == id->slot);
  CHECK_FALSE(arena->alive(*id));
  arena->pin(*id);    // stale: ignored
  arena->unpin(*id);  // stale: ignored
  arena->free(*id);   // stale: ignored
  CHECK(arena->alive(*again));
  CHECK(arena->pinned(*again));
}

// ---- property test ----

namespace {

struct ModelPiece {
  ArenaId id;
  std::uint64_t key = 0;
  OwnerId owner = 0;
  std::uint32_t blocks = 0;
  std::uint32_t pins = 0;
  bool behind = false;
  bool doomed = false;
  std::list<std::uint64_t>::iterator lru;  // valid when pins == 0 and not doomed
};

struct Model {
  std::uint32_t capacity = 0;
  std::uint32_t used = 0;
  std::unordered_map<std::uint64_t, ModelPiece> pieces;
  std::vector<std::uint64_t> keys;  // for picking at random (doomed ones included)
  std::list<std::uint64_t> normal, behind;

  std::uint32_t evictable() const {
    std::uint32_t n = 0;
    for (auto k : normal) n += pieces.at(k).blocks;
    for (auto k : behind) n += pieces.at(k).blocks;
    return n;
  }
  std::list<std::uint64_t>& list_of(const ModelPiece& p) { return p.behind ? behind : normal; }
  void link(ModelPiece& p) { p.lru = list_of(p).insert(list_of(p).end(), p.key); }
  void unlink(ModelPiece& p) { list_of(p).erase(p.lru); }
  void erase(std::uint64_t key) {
    used -= pieces.at(key).blocks;
    pieces.erase(key);
    auto it = std::find(keys.begin(), keys.end(), key);
    *it = keys.back();
    keys.pop_back();
  }
  std::uint64_t next_victim() const { return !behind.empty() ? behind.front() : normal.front(); }
};

void stamp(Arena& arena, const ModelPiece& p) {
  const PieceBytes b = arena.bytes(p.id);
  for (BlockIndex i = 0; i < b.block_count(); ++i) {
    const std::uint64_t v = p.key * 4096 + i;
    std::memcpy(b.block(i).data(), &v, std::min(sizeof v, b.block(i).size()));
    if (b.block(i).size() >= 16) std::memcpy(b.block(i).data() + b.block(i).size() - 8, &v, sizeof v);
  }
}

bool stamps_intact(Arena& arena, const ModelPiece& p) {
  const PieceBytes b = arena.bytes(p.id);
  for (BlockIndex i = 0; i < b.block_count(); ++i) {
    const std::uint64_t v = p.key * 4096 + i;
    std::uint64_t got = 0;
    const std::size_t n = std::min(sizeof got, b.block(i).size());
    std::memcpy(&got, b.block(i).data(), n);
    if (std::memcmp(&got, &v, n) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("arena property: 1,000,000 random operations agree with a model", "[arena][property]") {
  constexpr std::uint32_t kCapacity = 192;  // blocks: small, so eviction and refusal happen all the time
  auto arena_ptr = make_arena(kCapacity);
  Arena& arena = *arena_ptr;
  Model m;
  m.capacity = kCapacity;
  std::mt19937_64 rng(20261124);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };

  std::vector<std::pair<OwnerId, PieceIndex>> evicted;  // what the arena reported
  std::vector<OwnerId> owners;
  for (int i = 0; i < 3; ++i) {
    const auto self = static_cast<OwnerId>(i);
    owners.push_back(arena.add_owner([&evicted, self](PieceIndex p) { evicted.emplace_back(self, p); }));
    REQUIRE(owners.back() == self);
  }

  std::uint64_t next_key = 1;
  std::uint64_t allocations = 0, refusals = 0, evictions = 0, doomed_frees = 0;
  for (int op = 0; op < 1'000'000; ++op) {
    const std::size_t kind = pick(100);
    if (kind < 30 || m.keys.empty()) {
      // allocate: mostly whole blocks, some odd sizes, some large pieces
      std::uint32_t bytes;
      const std::size_t shape = pick(10);
      if (shape < 6) bytes = static_cast<std::uint32_t>(1 + pick(8)) * kBlockSize;
      else if (shape < 9) bytes = static_cast<std::uint32_t>(1 + pick(16 * kBlockSize));
      else bytes = static_cast<std::uint32_t>(16 + pick(64)) * kBlockSize;
      const std::uint32_t need = (bytes + kBlockSize - 1) / kBlockSize;
      const OwnerId owner = static_cast<OwnerId>(pick(3));
      const std::uint64_t key = next_key++;
      // What the model expects to be evicted, in order.
      std::vector<std::pair<OwnerId, PieceIndex>> expect;
      const bool fits = m.capacity - m.used + m.evictable() >= need;
      if (fits) {
        while (m.capacity - m.used < need) {
          const std::uint64_t v = m.next_victim();
          ModelPiece& vp = m.pieces.at(v);
          REQUIRE(vp.pins == 0);
          expect.emplace_back(vp.owner, static_cast<PieceIndex>(v));
          m.unlink(vp);
          m.erase(v);
        }
      }
      evicted.clear();
      REQUIRE(arena.fits(bytes) == fits);
      auto id = arena.allocate(owner, static_cast<PieceIndex>(key), bytes);
      REQUIRE(id.ok() == fits);
      REQUIRE(evicted == expect);  // LRU order (behind list first) matches the model exactly
      evictions += expect.size();
      if (!fits) {
        ++refusals;
        continue;
      }
      ++allocations;
      ModelPiece p;
      p.id = *id;
      p.key = key;
      p.owner = owner;
      p.blocks = need;
      p.pins = 1;
      m.used += need;
      m.keys.push_back(key);
      auto& stored = m.pieces.emplace(key, p).first->second;
      stamp(arena, stored);
    } else {
      const std::uint64_t key = m.keys[pick(m.keys.size())];
      ModelPiece& p = m.pieces.at(key);
      if (kind < 52) {  // unpin (or pin when none)
        if (p.pins > 0) {
          arena.unpin(p.id);
          if (--p.pins == 0) {
            if (p.doomed) {
              m.erase(key);
              continue;
            }
            m.link(p);
          }
        } else if (!p.doomed) {
          arena.pin(p.id);
          m.unlink(p);
          p.pins = 1;
        }
      } else if (kind < 58) {  // pin
        if (p.doomed) continue;
        arena.pin(p.id);
        if (p.pins++ == 0) m.unlink(p);
      } else if (kind < 70) {  // touch
        arena.touch(p.id);
        if (!p.doomed && p.pins == 0) {
          m.unlink(p);
          m.link(p);
        }
      } else if (kind < 78) {  // behind hint
        const bool behind = pick(2) == 0;
        arena.set_behind(p.id, behind);
        if (!p.doomed && p.behind != behind) {
          if (p.pins == 0) m.unlink(p);
          p.behind = behind;
          if (p.pins == 0) m.link(p);
        }
      } else if (kind < 86) {  // free
        arena.free(p.id);
        if (p.doomed) continue;
        if (p.pins == 0) {
          m.unlink(p);
          m.erase(key);
        } else {
          p.doomed = true;
          ++doomed_frees;
        }
      } else if (kind < 90) {  // explicit eviction
        evicted.clear();
        const bool any = !m.normal.empty() || !m.behind.empty();
        std::vector<std::pair<OwnerId, PieceIndex>> expect;
        if (any) {
          const std::uint64_t v = m.next_victim();
          expect.emplace_back(m.pieces.at(v).owner, static_cast<PieceIndex>(v));
          m.unlink(m.pieces.at(v));
          m.erase(v);
        }
        REQUIRE(arena.evict_one() == any);
        REQUIRE(evicted == expect);
        evictions += expect.size();
      } else {  // write into a live piece and check nobody else's blocks alias it
        REQUIRE(stamps_intact(arena, p));
        stamp(arena, p);
        if (!p.doomed) REQUIRE(arena.alive(p.id));
      }
    }

    // Invariants after every operation.
    const ArenaStats s = arena.stats();
    REQUIRE(s.used_bytes <= s.capacity_bytes);
    REQUIRE(s.used_bytes == std::uint64_t{m.used} * kBlockSize);
    if (op % 64 == 0) {
      std::uint64_t pinned = 0;
      for (auto& [k, p] : m.pieces) {
        if (p.pins > 0) pinned += p.blocks;
        REQUIRE(stamps_intact(arena, p));  // no two live pieces share a block
        REQUIRE(arena.alive(p.id) == !p.doomed);
        if (!p.doomed) REQUIRE(arena.pinned(p.id) == (p.pins > 0));
      }
      REQUIRE(s.pinned_bytes == pinned * kBlockSize);
      REQUIRE(s.evictable_bytes == std::uint64_t{m.evictable()} * kBlockSize);
      REQUIRE(s.live_pieces == m.pieces.size());
    }
  }
  const ArenaStats s = arena.stats();
  CHECK(s.evictions == evictions);
  CHECK(s.failed_allocations == refusals);
  // The run must have exercised every path, or it proves little.
  CHECK(allocations > 100'000);
  CHECK(refusals > 1'000);
  CHECK(evictions > 10'000);
  CHECK(doomed_frees > 1'000);
  WARN("allocations " << allocations << ", refusals " << refusals << ", evictions " << evictions
                      << ", frees while pinned " << doomed_frees);
}
