// DiskStore: a multi-file torrent (with padding and an empty file) written through the store and read back
// byte-identical from the files and through the store, restart re-verification, and torrents whose paths try to
// leave the download folder, by name or through a planted symlink.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>

#include <fstream>
#include <iterator>

#include "net/bencode.hpp"
#include "net/metainfo.hpp"
#include "storage/arena.hpp"
#include "storage/disk_store.hpp"
#include "storage/hasher.hpp"
#include "store_fixture.hpp"

using namespace ph;
using namespace ph::storage;
using namespace ph::storage::test;

namespace {

constexpr std::uint32_t kPiece = 2 * kBlockSize;  // 32 KiB pieces

using Paths = std::vector<std::vector<std::string>>;

std::vector<std::byte> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

struct DiskRig {
  asio::io_context io;
  std::unique_ptr<Arena> arena;
  std::unique_ptr<Hasher> hasher;
  const Torrent& torrent;
  Paths paths;
  std::filesystem::path root;
  std::unique_ptr<DiskStore> store;

  DiskRig(const Torrent& t, Paths p, std::filesystem::path dir, std::uint32_t arena_pieces = 4)
      : torrent(t), paths(std::move(p)), root(std::move(dir)) {
    auto a = Arena::create(std::uint64_t{arena_pieces} * kPiece);
    REQUIRE(a.ok());
    arena = std::move(*a);
    hasher = std::make_unique<Hasher>(io, 2);
    reopen();
  }
  ~DiskRig() {
    store.reset();
    hasher.reset();
  }
  void reopen() {
    store.reset();
    auto s = DiskStore::create(*arena, *hasher, torrent.layout(), torrent.hashes, paths, root);
    REQUIRE(s.ok());
    store = std::move(*s);
  }
  VerifyResult download(PieceIndex p) {
    REQUIRE(store->begin_piece(p).ok());
    const std::uint32_t size = store->layout().piece_size(p);
    for (std::uint32_t off = 0; off < size; off += kBlockSize) {
      const std::uint32_t len = std::min(kBlockSize, size - off);
      REQUIRE(store->write_block(p, off, torrent.block(p, off, len), 1).ok());
    }
    std::optional<VerifyResult> got;
    REQUIRE(store->submit_piece(p, [&](const VerifyResult& r) { got = r; }).ok());
    REQUIRE(run_until(io, [&] { return got.has_value(); }));
    return *got;
  }
  std::vector<std::byte> read_piece(PieceIndex p) {
    std::optional<Result<PieceView>> got;
    store->read_piece(p, [&](Result<PieceView> r) { got.emplace(std::move(r)); });
    REQUIRE(run_until(io, [&] { return got.has_value(); }));
    REQUIRE(got->ok());
    std::vector<std::byte> out((**got).size());
    (**got).copy_to(0, out);
    return out;
  }
  std::uint32_t recheck() {
    std::optional<std::uint32_t> found;
    store->recheck([&](std::uint32_t n) { found = n; });
    REQUIRE(run_until(io, [&] { return found.has_value(); }));
    return *found;
  }
};

// name/ a.bin (40000) | pad (25536, to the piece boundary) | sub/empty.txt (0) | sub/deeper/b.mkv (70000) | c (5)
const std::vector<LayoutFile> kFiles = {
    {40000, 0, false}, {25536, 0, true}, {0, 0, false}, {70000, 0, false}, {5, 0, false}};
const Paths kPaths = {{"show", "a.bin"},
                      {".pad", "25536"},
                      {"show", "sub", "empty.txt"},
                      {"show", "sub", "deeper", "b.mkv"},
                      {"show", "c"}};

}  // namespace

TEST_CASE("disk store: multi-file torrent written and read back byte-identical", "[disk_store]") {
  Torrent t(kPiece, kFiles, 3);
  TempDir dir;
  const auto root = dir.path / "downloads";
  DiskRig rig(t, kPaths, root, 2);  // a 2-piece arena: reads must come back from disk
  CHECK_FALSE(std::filesystem::exists(root));  // nothing is created before the first write
  const auto& layout = rig.store->layout();
  REQUIRE(layout.piece_count() == (40000u + 25536 + 70000 + 5 + kPiece - 1) / kPiece);
  for (PieceIndex p = layout.piece_count(); p-- > 0;) {  // backwards: later files are created first
    auto r = rig.download(p);
    INFO(r.error);
    REQUIRE(r.ok());
    CHECK(rig.store->has(p));
  }
  // The files hold exactly the torrent's bytes; padding was never written.
  auto slice = [&](std::uint64_t off, std::uint64_t len) {
    return std::vector<std::byte>(t.data.begin() + static_cast<std::ptrdiff_t>(off),
                                  t.data.begin() + static_cast<std::ptrdiff_t>(off + len));
  };
  CHECK(read_file(root / "show" / "a.bin") == slice(0, 40000));
  CHECK(read_file(root / "show" / "sub" / "deeper" / "b.mkv") == slice(65536, 70000));
  CHECK(read_file(root / "show" / "c") == slice(135536, 5));
  CHECK_FALSE(std::filesystem::exists(root / ".pad"));
  CHECK(std::filesystem::exists(root / "show" / "sub" / "empty.txt"));
  CHECK(std::filesystem::file_size(root / "show" / "sub" / "empty.txt") == 0);
  // Every piece reads back through the store (most from disk, the arena holds only two).
  CHECK(rig.arena->stats().evictions > 0);
  for (PieceIndex p = 0; p < layout.piece_count(); ++p) {
    CHECK(rig.read_piece(p) == slice(layout.piece_offset(p), layout.piece_size(p)));
  }
  CHECK(rig.arena->stats().used_bytes <= rig.arena->stats().capacity_bytes);
  CHECK(rig.arena->stats().pinned_bytes == 0);
  std::uint64_t cached = 0;  // pieces still in the arena after the reads (the rest went back to disk only)
  for (PieceIndex p = 0; p < layout.piece_count(); ++p) cached += rig.store->try_view(p) ? layout.piece_size(p) : 0;
  CHECK(rig.store->stats().resident_bytes == cached);
  CHECK(rig.store->stats().pieces_had == layout.piece_count());
}

TEST_CASE("disk store: files are sparse and full length from the first write", "[disk_store]") {
  Torrent t(kPiece, {{64 * kPiece, 0, false}}, 5);
  TempDir dir;
  DiskRig rig(t, {{"big.bin"}}, dir.path);
  REQUIRE(rig.download(40).ok());
  struct stat st {};
  REQUIRE(::stat((dir.path / "big.bin").c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) == 64ull * kPiece);
  CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 < 16ull * kPiece);  // only what was written takes space
}

TEST_CASE("disk store: whole pages are written around the page cache, the rest through it", "[disk_store]") {
  // 8 pieces of 32 KiB and a 5000-byte last piece: the full pieces go out with O_DIRECT, the tail buffered.
  Torrent t(kPiece, {{8 * kPiece + 5000, 0, false}}, 9);
  TempDir dir;
  DiskRig rig(t, {{"film.mkv"}}, dir.path, 2);
  for (PieceIndex p = 0; p < 9; ++p) REQUIRE(rig.download(p).ok());
  const auto path = dir.path / "film.mkv";
  CHECK(read_file(path) == t.data);
  for (PieceIndex p = 0; p < 9; ++p) CHECK(rig.read_piece(p) == rig.read_piece(p));  // and back through the store
  const int probe = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (probe < 0) {
    WARN("this file system refuses O_DIRECT: every write went through the page cache");
    return;
  }
  ::close(probe);
  // Page-cache residency of the file (read_file above went through the cache, so drop it first).
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const std::size_t len = 8 * kPiece + 5000;
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  std::vector<unsigned char> resident((len + 4095) / 4096);
  REQUIRE(::mincore(map, len, resident.data()) == 0);
  std::size_t cached_full = 0;
  for (std::size_t i = 0; i < 8 * kPiece / 4096; ++i) cached_full += resident[i] & 1;
  CHECK(cached_full == 0);  // nothing the direct writes left behind is dirty or pinned in the cache
  ::munmap(map, len);
  ::close(fd);
}

TEST_CASE("disk store: restart re-verifies what is on disk", "[disk_store]") {
  Torrent t(kPiece, kFiles, 4);
  TempDir dir;
  DiskRig rig(t, kPaths, dir.path);
  CHECK(rig.recheck() == 0);  // nothing there yet, and nothing created by looking
  CHECK(entries_under(dir.path) == 0);
  const auto count = rig.store->layout().piece_count();
  for (PieceIndex p = 0; p < count; p += 2) REQUIRE(rig.download(p).ok());  // every other piece
  rig.reopen();
  for (PieceIndex p = 0; p < count; ++p) CHECK_FALSE(rig.store->has(p));
  CHECK(rig.recheck() == (count + 1) / 2);
  for (PieceIndex p = 0; p < count; ++p) CHECK(rig.store->has(p) == (p % 2 == 0));
  // Corrupt one byte of piece 2 on disk (it lies in b.mkv): the next restart no longer counts it.
  {
    std::fstream f(dir.path / "show" / "sub" / "deeper" / "b.mkv", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * kPiece - 65536 + 100);
    f.put('\x5a' ^ static_cast<char>(t.data[2 * kPiece + 100]));
  }
  rig.reopen();
  CHECK(rig.recheck() == (count + 1) / 2 - 1);
  CHECK_FALSE(rig.store->has(2));
  CHECK(rig.store->has(0));
  REQUIRE(rig.download(2).ok());  // fetched again, written over the bad bytes
  CHECK(rig.read_piece(2) == std::vector<std::byte>(t.data.begin() + 2 * kPiece, t.data.begin() + 3 * kPiece));
}

TEST_CASE("disk store: unsafe paths are refused before anything is written", "[disk_store]") {
  Torrent t(kPiece, {{1000, 0, false}}, 6);
  asio::io_context io;
  auto arena = Arena::create(4 * kPiece);
  REQUIRE(arena.ok());
  Hasher hasher(io, 1);
  TempDir dir;
  const auto root = dir.path / "inside";
  for (const auto& bad : std::vector<std::vector<std::string>>{{"..", "escaped"},
                                                               {"t", "..", "..", "escaped"},
                                                               {"/tmp", "escaped"},
                                                               {"a/../../escaped"},
                                                               {"."},
                                                               {""},
                                                               {},
                                                               {std::string("nul\0byte", 8)},
                                                               {"back\\slash"}}) {
    auto s = DiskStore::create(**arena, hasher, t.layout(), t.hashes, {bad}, root);
    CHECK_FALSE(s.ok());
  }
  // The same through a Metainfo whose paths were not sanitized by the parser.
  Metainfo m;
  m.piece_length = kPiece;
  m.total_length = 1000;
  m.piece_hashes = t.hashes;
  m.files.push_back(FileEntry{{"..", "..", "etc", "escaped"}, 1000, 0});
  CHECK_FALSE(DiskStore::create(**arena, hasher, m, root).ok());
  CHECK(entries_under(dir.path) == 0);
}

TEST_CASE("disk store: a symlink planted in the download folder does not lead outside", "[disk_store]") {
  Torrent t(kPiece, {{3000, 0, false}, {3000, 0, false}}, 7);
  TempDir dir;
  const auto root = dir.path / "inside";
  const auto outside = dir.path / "outside";
  std::filesystem::create_directories(root / "show");
  std::filesystem::create_directories(outside);
  std::filesystem::create_directory_symlink(outside, root / "show" / "link");     // a folder link
  std::filesystem::create_symlink(outside / "victim", root / "show" / "file.bin");  // a file link
  DiskRig rig(t, {{"show", "link", "x.bin"}, {"show", "file.bin"}}, root);
  auto r = rig.download(0);
  CHECK(r.outcome == VerifyResult::Outcome::io_error);
  CHECK_FALSE(r.error.empty());
  CHECK_FALSE(rig.store->has(0));
  CHECK(entries_under(outside) == 0);  // nothing written outside the folder
  CHECK(rig.arena->stats().used_bytes == 0);
}

namespace {

// A .torrent whose files are given as raw path lists (nothing sanitized), each file 3000 bytes of 'x'.
std::string evil_torrent(const std::string& name, const std::vector<std::vector<std::string>>& files) {
  using bencode::Value;
  const std::uint32_t piece = 16384;
  std::string data;
  Value::List list;
  for (const auto& path : files) {
    Value::List comps;
    for (const auto& c : path) comps.emplace_back(c);
    list.emplace_back(Value::Dict{{"length", 3000}, {"path", comps}});
    data.append(3000, 'x');
  }
  std::string pieces;
  for (std::size_t off = 0; off < data.size(); off += piece) pieces += std::string(Sha1::of(std::string_view(data).substr(off, piece)).view());
  Value::Dict info{{"name", name}, {"piece length", static_cast<std::int64_t>(piece)}, {"pieces", pieces}};
  if (files.empty()) {
    info.emplace("length", 3000);
  } else {
    info.emplace("files", list);
  }
  return Value(Value::Dict{{"info", info}}).encode();
}

}  // namespace

TEST_CASE("disk store: torrents whose paths try to escape write nothing outside the folder", "[disk_store]") {
  struct Case {
    std::string name;
    std::vector<std::vector<std::string>> files;
  };
  const std::vector<Case> cases = {
      {"show", {{"..", "..", "escaped"}}},
      {"show", {{"sub", "..", "..", "escaped"}}},
      {"show", {{"/tmp", "escaped"}}},
      {"show", {{"a/../../escaped"}}},
      {"show", {{"ok.bin"}, {"..\\..\\escaped"}}},
      {"..", {{"escaped"}}},
      {"../escaped", {}},
      {"/tmp/escaped", {}},
      {"..", {}},
  };
  int refused = 0, contained = 0;
  for (const Case& c : cases) {
    TempDir dir;
    const auto root = dir.path / "inside";
    asio::io_context io;
    auto arena = Arena::create(16 * kPiece);
    REQUIRE(arena.ok());
    Hasher hasher(io, 1);
    auto m = parse_metainfo(evil_torrent(c.name, c.files));
    if (!m) {
      ++refused;
    } else {
      auto store = DiskStore::create(**arena, hasher, *m, root);
      if (!store) {
        ++refused;
      } else {
        // Sanitized into something harmless: download everything and look where it went.
        auto& st = **store;
        std::string data(m->total_length, 'x');
        for (PieceIndex p = 0; p < st.layout().piece_count(); ++p) {
          REQUIRE(st.begin_piece(p).ok());
          const std::uint32_t size = st.layout().piece_size(p);
          for (std::uint32_t off = 0; off < size; off += kBlockSize) {
            const auto len = std::min(kBlockSize, size - off);
            REQUIRE(st.write_block(p, off, std::as_bytes(std::span(data.data() + p * 16384ull + off, len))).ok());
          }
          std::optional<VerifyResult> r;
          REQUIRE(st.submit_piece(p, [&](const VerifyResult& v) { r = v; }).ok());
          REQUIRE(run_until(io, [&] { return r.has_value(); }));
          CHECK(r->ok());
        }
        ++contained;
      }
    }
    // Whatever happened, the only entry in the temp folder is (at most) the download folder itself.
    for (const auto& e : std::filesystem::directory_iterator(dir.path)) CHECK(e.path() == root);
    CHECK_FALSE(std::filesystem::exists("/tmp/escaped"));
  }
  CHECK(refused + contained == static_cast<int>(cases.size()));
  WARN("refused " << refused << ", sanitized and contained " << contained);
}
