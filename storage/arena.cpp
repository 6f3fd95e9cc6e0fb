// Arena: block free list, slot recycling and the two LRU lists (see arena.hpp for the contract).
#include "storage/arena.hpp"

#include <pthread.h>
#include <sys/mman.h>

#include <bit>
#include <cassert>
#include <cstring>

namespace ph::storage {

namespace {

constexpr std::uint32_t kMaxPieceBytes = 64u << 20;
// Never-used blocks are committed kCommitBlocks (4 MiB) per madvise call, up to kCommitAhead ahead of need.
constexpr std::uint32_t kCommitBlocks = (4u << 20) / kBlockSize;
constexpr std::uint32_t kCommitAhead = (32u << 20) / kBlockSize;
#ifndef MADV_POPULATE_WRITE
constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older kernels refuse it and pages fault in one by one
#endif

int class_of_capacity(std::size_t capacity) {
  if (capacity == 0) return 0;
  return std::min<int>(std::bit_width(capacity) - 1, 15);
}

}  // namespace

std::size_t PieceBytes::copy_to(std::uint32_t offset, std::span<std::byte> out) const {
  std::size_t done = 0;
  const auto want = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), 0xffffffffu));
  for_each_segment(offset, want, [&](std::span<std::byte> seg) {
    std::memcpy(out.data() + done, seg.data(), seg.size());
    done += seg.size();
  });
  return done;
}

Result<std::unique_ptr<Arena>> Arena::create(std::uint64_t budget_bytes) {
  std::uint64_t blocks = budget_bytes / kBlockSize;
  if (blocks == 0) blocks = 1;
  if (blocks >= ArenaId::kNoSlot) return make_error("arena: budget too large");
  const std::size_t bytes = static_cast<std::size_t>(blocks) * kBlockSize;
  // MAP_NORESERVE: reserving the budget costs address space only; pages are committed as blocks are first used
  // (see commit_ahead). Transparent huge pages are not asked for: committing fresh huge pages ran at 0.4-0.6 GB/s
  // here, more than the first-touch cost of 4 KiB pages they would save.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return make_error("arena: cannot reserve " + std::to_string(bytes) + " bytes");
  return std::unique_ptr<Arena>(new Arena(static_cast<std::byte*>(p), static_cast<std::uint32_t>(blocks)));
}

Arena::Arena(std::byte* base, std::uint32_t block_count)
    : base_(base), block_count_(block_count), block_link_(block_count) {
  for (std::uint32_t b = 0; b < block_count; ++b) block_link_[b] = b + 1 < block_count ? b + 1 : ArenaId::kNoSlot;
  free_head_ = 0;
  free_blocks_ = block_count;
  slots_.reserve(block_count);  // every live piece holds at least one block
  for (auto& c : free_slots_) c = ArenaId::kNoSlot;
}

Arena::~Arena() {
  if (committer_.joinable()) {
    {
      std::lock_guard lock(commit_mutex_);
      commit_stop_ = true;
    }
    commit_cv_.notify_one();
    committer_.join();
  }
  ::munmap(base_, static_cast<std::size_t>(block_count_) * kBlockSize);
}

OwnerId Arena::add_owner(EvictFn on_evicted) {
  for (OwnerId o = 0; o < owners_.size(); ++o) {
    if (!owners_[o]) {
      owners_[o] = std::move(on_evicted);
      owner_backed_[o] = false;
      return o;
    }
  }
  owners_.push_back(std::move(on_evicted));
  owner_backed_.push_back(false);
  return static_cast<OwnerId>(owners_.size() - 1);
}

void Arena::set_owner_backed(OwnerId owner, bool backed) {
  if (owner < owner_backed_.size()) owner_backed_[owner] = backed;
}

Arena::List Arena::list_for(const Slot& slot) const {
  if (slot.owner < owner_backed_.size() && owner_backed_[slot.owner]) return List::backed;
  return slot.behind ? List::behind : List::normal;
}

void Arena::remove_owner(OwnerId owner) {
  for (std::uint32_t s = 0; s < slots_.size(); ++s) {
    Slot& slot = slots_[s];
    if (!slot.live || slot.owner != owner) continue;
    if (slot.pins > 0) {
      slot.doomed = true;
    } else {
      release(s);
    }
  }
  if (owner < owners_.size()) owners_[owner] = nullptr;
}

Arena::Slot* Arena::lookup(ArenaId id) {
  if (id.slot >= slots_.size()) return nullptr;
  Slot& s = slots_[id.slot];
  return s.live && !s.doomed && s.gen == id.gen ? &s : nullptr;
}

const Arena::Slot* Arena::lookup(ArenaId id) const { return const_cast<Arena*>(this)->lookup(id); }

void Arena::link_tail(std::uint32_t s, List l) {
  Slot& slot = slots_[s];
  ListHead& h = head_of(l);
  slot.list = l;
  slot.prev = h.tail;
  slot.next = ArenaId::kNoSlot;
  if (h.tail != ArenaId::kNoSlot) {
    slots_[h.tail].next = s;
  } else {
    h.head = s;
  }
  h.tail = s;
  evictable_blocks_ += slot.blocks.size();
}

void Arena::unlink(std::uint32_t s) {
  Slot& slot = slots_[s];
  if (slot.list == List::none) return;
  ListHead& h = head_of(slot.list);
  if (slot.prev != ArenaId::kNoSlot) slots_[slot.prev].next = slot.next; else h.head = slot.next;
  if (slot.next != ArenaId::kNoSlot) slots_[slot.next].prev = slot.prev; else h.tail = slot.prev;
  slot.prev = slot.next = ArenaId::kNoSlot;
  slot.list = List::none;
  evictable_blocks_ -= slot.blocks.size();
}

std::uint32_t Arena::take_slot(std::uint32_t nblocks) {
  const int want = class_of_capacity(std::bit_ceil(nblocks));
  std::uint32_t s = ArenaId::kNoSlot;
  for (int c = want; c < kSlotClasses && s == ArenaId::kNoSlot; ++c) {
    if (free_slots_[c] != ArenaId::kNoSlot) {
      s = free_slots_[c];
      free_slots_[c] = slots_[s].next;
    }
  }
  // A smaller recycled slot grows its table once; only when every free slot is gone is a new one made. Either way
  // this happens only while the mix of piece sizes is still changing, never in the steady state.
  for (int c = want - 1; c >= 0 && s == ArenaId::kNoSlot; --c) {
    if (free_slots_[c] != ArenaId::kNoSlot) {
      s = free_slots_[c];
      free_slots_[c] = slots_[s].next;
    }
  }
  if (s == ArenaId::kNoSlot) {
    assert(slots_.size() < slots_.capacity());
    slots_.emplace_back();
    s = static_cast<std::uint32_t>(slots_.size() - 1);
  }
  Slot& slot = slots_[s];
  if (slot.blocks.capacity() < nblocks) slot.blocks.reserve(std::bit_ceil(nblocks));
  slot.next = slot.prev = ArenaId::kNoSlot;
  return s;
}

Result<ArenaId> Arena::allocate(OwnerId owner, PieceIndex piece, std::uint32_t bytes) {
  assert(!in_callback_ && "eviction callbacks must not call back into the arena");
  if (bytes == 0 || bytes > kMaxPieceBytes) return make_error("arena: piece size out of range");
  if (owner >= owners_.size() || !owners_[owner]) return make_error("arena: unknown owner");
  const std::uint32_t need = (bytes + kBlockSize - 1) / kBlockSize;
  if (static_cast<std::uint64_t>(free_blocks_) + evictable_blocks_ < need) {
    ++failed_allocations_;
    return make_error("arena: memory budget full (every remaining piece is pinned)");
  }
  while (warm_free_blocks() < need && backed_.head != ArenaId::kNoSlot) evict(backed_.head);
  while (free_blocks_ < need) {
    const bool evicted = evict_one();
    assert(evicted);
    (void)evicted;
  }
  const std::uint32_t s = take_slot(need);
  Slot& slot = slots_[s];
  slot.blocks.clear();
  for (std::uint32_t i = 0; i < need; ++i) {
    const std::uint32_t b = free_head_;
    free_head_ = block_link_[b];
    assert(b <= cold_from_);
    if (b == cold_from_) {
      if (b >= next_commit_check_) commit_ahead(b);
      ++cold_from_;
    }
    block_link_[b] = 0;  // becomes the block's tag
    slot.blocks.push_back(b);
  }
  free_blocks_ -= need;
  slot.gen += 1;
  slot.owner = owner;
  slot.piece = piece;
  slot.bytes = bytes;
  slot.pins = 1;
  slot.list = List::none;
  slot.behind = false;
  slot.live = true;
  slot.doomed = false;
  pinned_blocks_ += need;
  ++live_pieces_;
  return ArenaId{s, slot.gen};
}

void Arena::commit_ahead(std::uint32_t block) {
  // Fresh memory is expensive here: on a paravirtualised guest the first user-space touch of each page costs more
  // than copying the page (first-touch memcpy ran at 0.3 GB/s, a second pass at 15 GB/s), and committing is the io
  // thread's largest cost when the arena grows. So a thread of the arena's own commits pages (MADV_POPULATE_WRITE)
  // and touches each once, kCommitAhead blocks ahead of the blocks in use, on another core. The io thread uses a
  // never-used block only once the committer is past it, so the two never write the same page; should the
  // committer fall behind, the io thread waits for it. RSS stays within the budget: only arena blocks are committed.
  next_commit_check_ = std::min(block_count_, block + kCommitBlocks);
  std::unique_lock lock(commit_mutex_);
  commit_target_ = std::max(commit_target_, std::min(block_count_, block + kCommitAhead));
  if (!committer_.joinable()) committer_ = std::thread([this] { committer_main(); });
  commit_cv_.notify_one();
  committed_cv_.wait(lock, [&] { return committed_ >= next_commit_check_; });
}

void Arena::committer_main() {
  pthread_setname_np(pthread_self(), "ph-commit");
  std::unique_lock lock(commit_mutex_);
  for (;;) {
    commit_cv_.wait(lock, [&] { return commit_stop_ || committed_ < commit_target_; });
    if (commit_stop_) return;
    const std::uint32_t from = committed_;
    const std::uint32_t to = std::min(commit_target_, from + kCommitBlocks);
    lock.unlock();
    std::byte* const first = base_ + static_cast<std::size_t>(from) * kBlockSize;
    const std::size_t length = static_cast<std::size_t>(to - from) * kBlockSize;
    ::madvise(first, length, MADV_POPULATE_WRITE);  // Linux < 5.14 refuses it: the touches below fault pages in
    for (std::size_t at = 0; at < length; at += kPageBytes) *reinterpret_cast<volatile char*>(first + at) = 0;
    lock.lock();
    committed_ = to;
    committed_cv_.notify_all();
  }
}

bool Arena::fits(std::uint32_t bytes) const {
  if (bytes == 0 || bytes > kMaxPieceBytes) return false;
  const std::uint32_t need = (bytes + kBlockSize - 1) / kBlockSize;
  return static_cast<std::uint64_t>(free_blocks_) + evictable_blocks_ >= need;
}

void Arena::release(std::uint32_t s) {
  Slot& slot = slots_[s];
  unlink(s);
  if (slot.pins > 0) pinned_blocks_ -= slot.blocks.size();
  // Blocks go back in reverse so that a piece freed and reallocated gets the same blocks (warm pages).
  for (auto it = slot.blocks.rbegin(); it != slot.blocks.rend(); ++it) {
    block_link_[*it] = free_head_;
    free_head_ = *it;
  }
  free_blocks_ += static_cast<std::uint32_t>(slot.blocks.size());
  slot.blocks.clear();
  slot.live = false;
  slot.doomed = false;
  slot.pins = 0;
  slot.gen += 1;  // invalidates every outstanding id
  --live_pieces_;
  const int c = class_of_capacity(slot.blocks.capacity());
  slot.next = free_slots_[c];
  free_slots_[c] = s;
}

void Arena::free(ArenaId id) {
  Slot* slot = lookup(id);
  if (slot == nullptr) return;
  if (slot->pins > 0) {
    slot->doomed = true;
  } else {
    release(id.slot);
  }
}

void Arena::pin(ArenaId id) {
  Slot* slot = lookup(id);
  if (slot == nullptr) return;
  if (slot->pins++ == 0) {
    unlink(id.slot);
    pinned_blocks_ += slot->blocks.size();
  }
}

void Arena::unpin(ArenaId id) {
  // A doomed slot still answers to its id here, so that the pin taken before free() can be returned.
  if (id.slot >= slots_.size()) return;
  Slot& slot = slots_[id.slot];
  if (!slot.live || slot.gen != id.gen || slot.pins == 0) return;
  if (--slot.pins > 0) return;
  pinned_blocks_ -= slot.blocks.size();
  if (slot.doomed) {
    release(id.slot);
  } else {
    link_tail(id.slot, list_for(slot));
  }
}

void Arena::touch(ArenaId id) {
  Slot* slot = lookup(id);
  if (slot == nullptr || slot->list == List::none) return;
  const List l = slot->list;
  unlink(id.slot);
  link_tail(id.slot, l);
}

void Arena::set_behind(ArenaId id, bool behind) {
  Slot* slot = lookup(id);
  if (slot == nullptr || slot->behind == behind) return;
  slot->behind = behind;
  if (slot->list != List::none) {
    unlink(id.slot);
    link_tail(id.slot, list_for(*slot));
  }
}

void Arena::evict(std::uint32_t s) {
  const OwnerId owner = slots_[s].owner;
  const PieceIndex piece = slots_[s].piece;
  release(s);
  ++evictions_;
  if (owner < owners_.size() && owners_[owner]) {
    in_callback_ = true;
    owners_[owner](piece);
    in_callback_ = false;
  }
}

bool Arena::evict_one() {
  std::uint32_t victim = backed_.head;
  if (victim == ArenaId::kNoSlot) victim = behind_.head != ArenaId::kNoSlot ? behind_.head : normal_.head;
  if (victim == ArenaId::kNoSlot) return false;
  evict(victim);
  return true;
}

bool Arena::alive(ArenaId id) const { return lookup(id) != nullptr; }

bool Arena::pinned(ArenaId id) const {
  const Slot* slot = lookup(id);
  return slot != nullptr && slot->pins > 0;
}

PieceBytes Arena::bytes(ArenaId id) const {
  // Doomed pieces are still readable by whoever holds their pins.
  assert(id.slot < slots_.size() && slots_[id.slot].live && slots_[id.slot].gen == id.gen);
  const Slot& slot = slots_[id.slot];
  return PieceBytes{base_, slot.blocks.data(), slot.bytes};
}

std::uint32_t& Arena::block_tag(ArenaId id, BlockIndex b) {
  const Slot& slot = slots_[id.slot];
  assert(slot.live && slot.gen == id.gen && b < slot.blocks.size());
  return block_link_[slot.blocks[b]];
}

ArenaStats Arena::stats() const {
  ArenaStats s;
  s.capacity_bytes = static_cast<std::uint64_t>(block_count_) * kBlockSize;
  s.used_bytes = static_cast<std::uint64_t>(block_count_ - free_blocks_) * kBlockSize;
  s.pinned_bytes = pinned_blocks_ * kBlockSize;
  s.evictable_bytes = evictable_blocks_ * kBlockSize;
  s.evictions = evictions_;
  s.failed_allocations = failed_allocations_;
  s.live_pieces = live_pieces_;
  return s;
}

}  // namespace ph::storage
