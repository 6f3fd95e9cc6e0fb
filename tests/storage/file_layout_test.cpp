// FileLayout: file <-> piece <-> byte range geometry on odd last pieces, zero-length files, padding and 64-bit sizes.
#include <catch2/catch.hpp>

#include <vector>

#include "storage/file_layout.hpp"

using namespace ph;
using namespace ph::storage;

namespace {

FileLayout layout(std::uint32_t piece_length, std::vector<LayoutFile> files) {
  std::uint64_t total = 0;
  for (auto& f : files) total += f.length;
  auto l = FileLayout::make(piece_length, static_cast<std::uint32_t>((total + piece_length - 1) / piece_length), files);
  REQUIRE(l.ok());
  return std::move(*l);
}

std::vector<Slice> file_slices(const FileLayout& l, PieceIndex p) {
  std::vector<Slice> out;
  l.for_each_file_slice(p, 0, l.piece_size(p), [&](const Slice& s) { out.push_back(s); });
  return out;
}

}  // namespace

TEST_CASE("layout: single file with a short last piece", "[layout]") {
  auto l = layout(32768, {{100000, 0, false}});
  CHECK(l.piece_count() == 4);
  CHECK(l.piece_size(0) == 32768);
  CHECK(l.piece_size(3) == 100000 - 3 * 32768);
  CHECK(l.piece_size(4) == 0);
  CHECK(l.pieces_of_file(0).first == 0);
  CHECK(l.pieces_of_file(0).end == 4);
  auto s = file_slices(l, 3);
  REQUIRE(s.size() == 1);
  CHECK(s[0].file_offset == 3 * 32768);
  CHECK(s[0].length == 100000 - 3 * 32768);
}

TEST_CASE("layout: boundary pieces are shared by neighbouring files", "[layout]") {
  // files: 40000 | 0 | 30000 | 10 with 16 KiB pieces -> total 70010, 5 pieces
  auto l = layout(16384, {{40000, 0, false}, {0, 0, false}, {30000, 0, false}, {10, 0, false}});
  CHECK(l.piece_count() == 5);
  CHECK(l.file(2).offset == 40000);
  CHECK(l.file(3).offset == 70000);
  CHECK(l.pieces_of_file(0).first == 0);
  CHECK(l.pieces_of_file(0).end == 3);  // byte 39999 is in piece 2
  CHECK(l.pieces_of_file(1).empty());   // zero-length: no piece
  CHECK(l.pieces_of_file(2).first == 2);
  CHECK(l.pieces_of_file(2).end == 5);  // bytes 40000..69999: pieces 2..4
  CHECK(l.pieces_of_file(3).first == 4);
  CHECK(l.pieces_of_file(3).end == 5);
  auto s = file_slices(l, 2);  // bytes 32768..49151
  REQUIRE(s.size() == 2);
  CHECK(s[0].file == 0);
  CHECK(s[0].file_offset == 32768);
  CHECK(s[0].piece_offset == 0);
  CHECK(s[0].length == 40000 - 32768);
  CHECK(s[1].file == 2);  // the empty file 1 is skipped
  CHECK(s[1].file_offset == 0);
  CHECK(s[1].piece_offset == 40000 - 32768);
  CHECK(s[1].length == 49152 - 40000);
  auto last = file_slices(l, 4);  // bytes 65536..70009
  REQUIRE(last.size() == 2);
  CHECK(last[0].file == 2);
  CHECK(last[0].length == 70000 - 65536);
  CHECK(last[1].file == 3);
  CHECK(last[1].length == 10);
}

TEST_CASE("layout: file_at skips zero-length files and stops at the end", "[layout]") {
  auto l = layout(16384, {{0, 0, false}, {5, 0, false}, {0, 0, false}, {7, 0, false}});
  CHECK(l.file_at(0) == 1);
  CHECK(l.file_at(4) == 1);
  CHECK(l.file_at(5) == 3);
  CHECK(l.file_at(11) == 3);
  CHECK(l.file_at(12) == l.file_count());
}

TEST_CASE("layout: file ranges map to piece runs and back", "[layout]") {
  auto l = layout(16384, {{10000, 0, false}, {50000, 0, false}, {20000, 0, false}});
  std::vector<Slice> runs;
  l.for_each_piece_slice(1, 1000, 40000, [&](const Slice& s) { runs.push_back(s); });
  // file 1 starts at torrent byte 10000: [11000, 51000) spans pieces 0..3
  REQUIRE(runs.size() == 4);
  CHECK(runs[0].piece == 0);
  CHECK(runs[0].piece_offset == 11000);
  CHECK(runs[0].length == 16384 - 11000);
  CHECK(runs[1].piece == 1);
  CHECK(runs[1].length == 16384);
  CHECK(runs[3].piece == 3);
  CHECK(runs[3].piece_offset + runs[3].length == 51000 - 3 * 16384);
  std::uint64_t total = 0;
  for (auto& r : runs) total += r.length;
  CHECK(total == 40000);
  // Clamped to the file's end.
  runs.clear();
  l.for_each_piece_slice(2, 19000, 1'000'000, [&](const Slice& s) { runs.push_back(s); });
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].length == 1000);
  runs.clear();
  l.for_each_piece_slice(2, 20000, 5, [&](const Slice& s) { runs.push_back(s); });
  CHECK(runs.empty());
  // Every byte of every piece maps back to exactly one file byte.
  std::uint64_t mapped = 0;
  for (PieceIndex p = 0; p < l.piece_count(); ++p) {
    for (const Slice& s : file_slices(l, p)) {
      CHECK(l.file(s.file).offset + s.file_offset == l.piece_offset(p) + s.piece_offset);
      mapped += s.length;
    }
  }
  CHECK(mapped == l.total_length());
}

TEST_CASE("layout: padding files are flagged", "[layout]") {
  auto l = layout(16384, {{1000, 0, false}, {15384, 0, true}, {16384, 0, false}});
  auto s = file_slices(l, 0);
  REQUIRE(s.size() == 2);
  CHECK_FALSE(s[0].pad);
  CHECK(s[1].pad);
  CHECK(l.pieces_of_file(2).first == 1);
}

TEST_CASE("layout: multi-GiB files use 64-bit offsets", "[layout]") {
  const std::uint64_t big = 6ull << 30;  // 6 GiB
  auto l = layout(4u << 20, {{big, 0, false}, {123, 0, false}, {big + 1, 0, false}});
  CHECK(l.total_length() == 2 * big + 124);
  CHECK(l.piece_count() == (2 * big + 124 + (4u << 20) - 1) / (4u << 20));
  CHECK(l.file(2).offset == big + 123);
  CHECK(l.pieces_of_file(1).first == 1536);  // 6 GiB / 4 MiB
  CHECK(l.pieces_of_file(1).end == 1537);
  CHECK(l.file_at(big + 100) == 1);
  CHECK(l.file_at(big + 123) == 2);
  std::vector<Slice> runs;
  l.for_each_piece_slice(2, big - 10, 100, [&](const Slice& s) { runs.push_back(s); });
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].length == 11);
  CHECK(runs[0].file_offset == big - 10);
  const PieceIndex last = l.piece_count() - 1;
  CHECK(l.piece_size(last) == (2 * big + 124) - std::uint64_t{last} * (4u << 20));
}

TEST_CASE("layout: inconsistent input is refused", "[layout]") {
  CHECK_FALSE(FileLayout::make(0, 0, {}).ok());
  CHECK_FALSE(FileLayout::make(16384, 3, {{16384, 0, false}}).ok());
  CHECK(FileLayout::make(16384, 0, {}).ok());  // an empty torrent has no piece
  Metainfo m;
  m.piece_length = 16384;
  m.total_length = 20000;
  m.piece_hashes = std::string(40, 'x');
  m.files.push_back(FileEntry{{"a"}, 20000, 0});
  CHECK(FileLayout::from_metainfo(m).ok());
  m.total_length = 20001;
  CHECK_FALSE(FileLayout::from_metainfo(m).ok());
  m.total_length = 20000;
  m.piece_hashes = std::string(41, 'x');
  CHECK_FALSE(FileLayout::from_metainfo(m).ok());
}
