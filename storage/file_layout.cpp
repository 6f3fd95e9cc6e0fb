// FileLayout construction and lookups (see file_layout.hpp).
#include "storage/file_layout.hpp"

#include <algorithm>

namespace ph::storage {

Result<FileLayout> FileLayout::make(std::uint32_t piece_length, std::uint32_t piece_count,
                                    const std::vector<LayoutFile>& files) {
  if (piece_length == 0) return make_error("layout: piece length is zero");
  FileLayout l;
  l.piece_length_ = piece_length;
  l.piece_count_ = piece_count;
  l.files_ = files;
  std::uint64_t total = 0;
  for (LayoutFile& f : l.files_) {
    if (f.length > (std::uint64_t{1} << 62) - total) return make_error("layout: total length overflows");
    f.offset = total;
    total += f.length;
  }
  l.total_length_ = total;
  const std::uint64_t expected_pieces = (total + piece_length - 1) / piece_length;
  if (expected_pieces != piece_count) {
    return make_error("layout: " + std::to_string(piece_count) + " pieces for " + std::to_string(total) +
                      " bytes of piece length " + std::to_string(piece_length) + " (expected " +
                      std::to_string(expected_pieces) + ")");
  }
  return l;
}

Result<FileLayout> FileLayout::from_metainfo(const Metainfo& m) {
  std::vector<LayoutFile> files;
  files.reserve(m.files.size());
  for (const FileEntry& e : m.files) files.push_back(LayoutFile{e.length, 0, e.pad});
  if (m.piece_hashes.size() % 20 != 0) return make_error("layout: piece hashes are not a multiple of 20 bytes");
  auto l = make(m.piece_length, static_cast<std::uint32_t>(m.piece_hashes.size() / 20), files);
  if (!l) return l;
  if (l->total_length() != m.total_length) return make_error("layout: file lengths do not add up to total length");
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    if (m.files[i].offset != l->files_[i].offset) return make_error("layout: file offsets are inconsistent");
  }
  return l;
}

std::uint32_t FileLayout::piece_size(PieceIndex p) const {
  if (p >= piece_count_) return 0;
  const std::uint64_t start = piece_offset(p);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(piece_length_, total_length_ - start));
}

PieceRange FileLayout::pieces_of_file(FileIndex f) const {
  if (f >= files_.size() || files_[f].length == 0) return {};
  const LayoutFile& lf = files_[f];
  const auto first = static_cast<PieceIndex>(lf.offset / piece_length_);
  const auto last = static_cast<PieceIndex>((lf.offset + lf.length - 1) / piece_length_);
  return {first, last + 1};
}

FileIndex FileLayout::file_at(std::uint64_t offset) const {
  if (offset >= total_length_) return file_count();
  // The first file whose end lies past offset; zero-length files end where they start and are skipped.
  auto it = std::upper_bound(files_.begin(), files_.end(), offset,
                             [](std::uint64_t off, const LayoutFile& f) { return off < f.offset + f.length; });
  return static_cast<FileIndex>(it - files_.begin());
}

}  // namespace ph::storage
