// MemoryStore: memory mode (the default). Verified pieces live only in the shared Arena; an evicted piece is simply
// not had any more and is fetched again if a reader comes back to it. It never touches the file system: no file
// and no folder is created, whatever the torrent says.
#pragma once

#include <memory>

#include "net/metainfo.hpp"
#include "storage/arena_store.hpp"

namespace ph::storage {

class MemoryStore final : public ArenaStore {
 public:
  MemoryStore(Arena& arena, Hasher& hasher, FileLayout layout, std::string piece_hashes)
      : ArenaStore(arena, hasher, std::move(layout), std::move(piece_hashes)) {}
  ~MemoryStore() override { shutdown(); }

  static Result<std::unique_ptr<MemoryStore>> create(Arena& arena, Hasher& hasher, const Metainfo& m);
};

}  // namespace ph::storage
