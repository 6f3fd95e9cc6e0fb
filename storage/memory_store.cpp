// MemoryStore construction from a parsed torrent (everything else is ArenaStore).
#include "storage/memory_store.hpp"

namespace ph::storage {

Result<std::unique_ptr<MemoryStore>> MemoryStore::create(Arena& arena, Hasher& hasher, const Metainfo& m) {
  auto layout = FileLayout::from_metainfo(m);
  if (!layout) return layout.error();
  return std::make_unique<MemoryStore>(arena, hasher, std::move(*layout), m.piece_hashes);
}

}  // namespace ph::storage
