// FileLayout: the pure geometry of a torrent's data. Files are laid end to end in torrent order (padding files
// included); pieces cut that byte stream every piece_length bytes. This maps files <-> pieces <-> byte ranges with
// 64-bit offsets, handles zero-length files and the short last piece, and names the pieces a file needs including
// the boundary pieces it shares with its neighbours.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "net/metainfo.hpp"
#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::storage {

struct LayoutFile {
  std::uint64_t length = 0;
  std::uint64_t offset = 0;  // computed: sum of the lengths before it
  bool pad = false;
};

// A piece range [first, end); empty when first == end (zero-length files need no piece).
struct PieceRange {
  PieceIndex first = 0;
  PieceIndex end = 0;
  bool empty() const { return first >= end; }
  std::uint32_t size() const { return empty() ? 0 : end - first; }
};

// One run of bytes shared by a piece and a file.
struct Slice {
  FileIndex file = 0;
  PieceIndex piece = 0;
  std::uint64_t file_offset = 0;   // where the run starts in the file
  std::uint32_t piece_offset = 0;  // where the run starts in the piece
  std::uint32_t length = 0;
  bool pad = false;
};

class FileLayout {
 public:
  // Builds from a parsed .torrent: checks that the lengths add up to total_length and that the piece count matches.
  static Result<FileLayout> from_metainfo(const Metainfo& m);
  // Builds from bare lengths (tests, benchmarks). piece_length must be > 0.
  static Result<FileLayout> make(std::uint32_t piece_length, std::uint32_t piece_count,
                                 const std::vector<LayoutFile>& files);

  std::uint32_t piece_length() const { return piece_length_; }
  std::uint32_t piece_count() const { return piece_count_; }
  std::uint64_t total_length() const { return total_length_; }
  std::uint32_t piece_size(PieceIndex p) const;  // the last piece may be shorter; 0 when out of range
  std::uint64_t piece_offset(PieceIndex p) const { return static_cast<std::uint64_t>(p) * piece_length_; }

  std::uint32_t file_count() const { return static_cast<std::uint32_t>(files_.size()); }
  const LayoutFile& file(FileIndex f) const { return files_[f]; }

  // The pieces holding any byte of file f, boundary pieces shared with neighbours included.
  PieceRange pieces_of_file(FileIndex f) const;
  // The file holding torrent byte `offset` (zero-length files hold no byte); file_count() when out of range.
  FileIndex file_at(std::uint64_t offset) const;

  // Calls f(const Slice&) for each file run inside [offset, offset + length) of piece p, in order, skipping
  // zero-length files. Bytes past the end of the piece are ignored.
  template <class F>
  void for_each_file_slice(PieceIndex p, std::uint32_t offset, std::uint32_t length, F&& f) const {
    const std::uint32_t psize = piece_size(p);
    if (offset >= psize) return;
    const std::uint32_t end = offset + std::min(length, psize - offset);
    std::uint64_t pos = piece_offset(p) + offset;
    const std::uint64_t stop = piece_offset(p) + end;
    for (FileIndex fi = file_at(pos); fi < files_.size() && pos < stop; ++fi) {
      const LayoutFile& lf = files_[fi];
      if (lf.length == 0) continue;
      const std::uint64_t run_end = std::min(stop, lf.offset + lf.length);
      Slice s{fi, p, pos - lf.offset, static_cast<std::uint32_t>(pos - piece_offset(p)),
              static_cast<std::uint32_t>(run_end - pos), lf.pad};
      f(s);
      pos = run_end;
    }
  }

  // Calls f(const Slice&) for each piece run covering [offset, offset + length) of file `file`, in order. The
  // range is clamped to the file.
  template <class F>
  void for_each_piece_slice(FileIndex file, std::uint64_t offset, std::uint64_t length, F&& f) const {
    if (file >= files_.size()) return;
    const LayoutFile& lf = files_[file];
    if (offset >= lf.length) return;
    const std::uint64_t end = offset + std::min(length, lf.length - offset);
    std::uint64_t pos = lf.offset + offset;
    const std::uint64_t stop = lf.offset + end;
    while (pos < stop) {
      const auto p = static_cast<PieceIndex>(pos / piece_length_);
      const std::uint64_t piece_end = std::min<std::uint64_t>(piece_offset(p) + piece_length_, stop);
      Slice s{file, p, pos - lf.offset, static_cast<std::uint32_t>(pos - piece_offset(p)),
              static_cast<std::uint32_t>(piece_end - pos), lf.pad};
      f(s);
      pos = piece_end;
    }
  }

 private:
  std::vector<LayoutFile> files_;
  std::uint64_t total_length_ = 0;
  std::uint32_t piece_length_ = 0;
  std::uint32_t piece_count_ = 0;
};

}  // namespace ph::storage
