// DiskStore: disk mode. Pieces are assembled and verified in the Arena like in memory mode, then written on a
// worker into the torrent's files under the download folder (sparse files, created at the first write; padding
// files are never written). Verified pieces stay in the arena as an evictable cache; reading one that is not cached
// loads it from disk on a worker. On startup recheck() re-verifies what is already on disk.
//
// Paths: every component is checked again here (not only by the metainfo parser) and files are opened by walking
// the folders with openat(O_NOFOLLOW), so neither "..", absolute paths nor symlinks planted in the download folder
// can make a torrent write outside it.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "net/metainfo.hpp"
#include "storage/arena_store.hpp"

namespace ph::storage {

class DiskStore final : public ArenaStore {
 public:
  // Refuses a torrent with any unsafe path component. Creates nothing: folders and files appear on first write.
  static Result<std::unique_ptr<DiskStore>> create(Arena& arena, Hasher& hasher, const Metainfo& m,
                                                   std::filesystem::path download_dir);
  // paths: one entry per file of the layout (pad files may have empty paths), components relative to the folder.
  static Result<std::unique_ptr<DiskStore>> create(Arena& arena, Hasher& hasher, FileLayout layout,
                                                   std::string piece_hashes, std::vector<std::vector<std::string>> paths,
                                                   std::filesystem::path download_dir);
  ~DiskStore() override;

  // Re-verifies every piece already on disk (on the workers, a few at a time) and marks the good ones had.
  // done(pieces_had) runs on the io thread. Call once, before the first begin_piece.
  void recheck(std::function<void(std::uint32_t pieces_had)> done);

  // Whether a path component is safe to use as one file or folder name.
  static bool safe_component(std::string_view c);

  DiskStore(Arena& arena, Hasher& hasher, FileLayout layout, std::string piece_hashes,
            std::vector<std::vector<std::string>> paths, std::filesystem::path download_dir);

 protected:
  bool backed_by_disk() const override { return true; }
  Result<void> persist(PieceIndex p, const PieceBytes& bytes) override;
  Result<void> load(PieceIndex p, const PieceBytes& bytes) override;

 private:
  struct Recheck;
  template <class SegmentFn>
  Result<void> transfer(PieceIndex p, bool write, SegmentFn&& for_each_segment) const;
  // direct: O_DIRECT (bypassing the page cache); falls back to a buffered descriptor where the file system refuses.
  Result<int> open_file(FileIndex f, bool create, bool direct = false) const;
  void recheck_step();

  std::vector<std::vector<std::string>> paths_;
  std::filesystem::path root_;
  std::unique_ptr<Recheck> recheck_;
  std::once_flag empty_files_;  // zero-length files are created with the first piece written
};

}  // namespace ph::storage
