// bt-create as a user runs it: single and multi-file torrents whose piece hashes we recompute independently here,
// trackers/web seeds/private, automatic piece length, thread-count independence and clear errors.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "net/metainfo.hpp"
#include "net/sha1.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "playhead-create-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Run create(const std::string& args, const TempDir& tmp) {
  const fs::path err_file = tmp.path / "stderr.txt";
  const std::string cmd = "cd '" + tmp.path.string() + "' && timeout 60 '" PLAYHEAD_BIN_DIR "/bt-create' " + args +
                          " 2>'" + err_file.string() + "'";
  Run r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err_file);
  return r;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void write(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

// Recomputes every piece hash from the concatenated data, independently of bt-create's reader.
void check_pieces(const ph::Metainfo& m, const std::string& data) {
  REQUIRE(data.size() == m.total_length);
  for (ph::PieceIndex i = 0; i < m.piece_count(); ++i) {
    const auto piece = std::string_view(data).substr(static_cast<std::size_t>(i) * m.piece_length, m.piece_size(i));
    INFO("piece " << i);
    CHECK(ph::Sha1::of(piece) == m.piece_hash(i));
  }
}

ph::Metainfo load(const fs::path& p) {
  auto m = ph::parse_metainfo(slurp(p));
  INFO((m.ok() ? "" : m.error().message));
  REQUIRE(m.ok());
  return *m;
}

}  // namespace

TEST_CASE("bt-create: single file with trackers, web seed, private flag") {
  TempDir tmp;
  const std::string data = random_bytes(100000, 1);
  write(tmp.path / "clip.mp4", data);
  const Run r = create("-l 16K -t http://a/announce,http://b/announce -t udp://c:1 -w http://ws/clip.mp4 "
                       "--private -c hello -o out.torrent clip.mp4",
                       tmp);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const ph::Metainfo m = load(tmp.path / "out.torrent");
  CHECK(r.out.find("info-hash: " + m.info_hash.hex()) != std::string::npos);
  CHECK(r.err.find("hashed 7/7 pieces (100%)") != std::string::npos);  // the progress line
  CHECK_FALSE(m.multi_file);
  CHECK(m.name == "clip.mp4");
  CHECK(m.piece_length == 16384);
  CHECK(m.piece_count() == 7);
  CHECK(m.is_private);
  CHECK(m.comment == "hello");
  CHECK(m.trackers == std::vector<std::vector<std::string>>{{"http://a/announce", "http://b/announce"}, {"udp://c:1"}});
  CHECK(m.web_seeds == std::vector<std::string>{"http://ws/clip.mp4"});
  CHECK(m.creation_date > 0);
  check_pieces(m, data);
}

TEST_CASE("bt-create: a folder, pieces spanning files, empty files kept, stable order") {
  TempDir tmp;
  const fs::path dir = tmp.path / "Season 1";
  // Sizes chosen so pieces straddle file boundaries, including a file smaller than a piece and an empty one.
  const std::string a = random_bytes(40000, 2), b = random_bytes(10, 3), c = random_bytes(70001, 4);
  write(dir / "b" / "z.mkv", b);
  write(dir / "a.mkv", a);
  write(dir / "c" / "d" / "e.srt", c);
  write(dir / "empty.txt", "");
  const Run r = create("--no-date -q -l 16384 --threads 3 -o s.torrent 'Season 1'", tmp);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());  // -q: no progress line
  const ph::Metainfo m = load(tmp.path / "s.torrent");
  CHECK(m.multi_file);
  CHECK(m.name == "Season 1");
  CHECK(m.creation_date == 0);
  REQUIRE(m.files.size() == 4);
  CHECK(m.files[0].path_string() == "Season 1/a.mkv");
  CHECK(m.files[1].path_string() == "Season 1/b/z.mkv");
  CHECK(m.files[2].path_string() == "Season 1/c/d/e.srt");
  CHECK(m.files[3].path_string() == "Season 1/empty.txt");
  CHECK(m.files[3].length == 0);
  check_pieces(m, a + b + c);

  // The same folder hashed by one thread gives the same bytes (hence the same info-hash).
  const Run r1 = create("--no-date -q -l 16384 --threads 1 -o s1.torrent 'Season 1/'", tmp);
  REQUIRE(r1.exit_code == 0);
  CHECK(slurp(tmp.path / "s1.torrent") == slurp(tmp.path / "s.torrent"));
}

TEST_CASE("bt-create: automatic piece length keeps the piece count bounded") {
  TempDir tmp;
  const std::string data = random_bytes(3 << 20, 5);
  write(tmp.path / "f.bin", data);
  const Run r = create("-q f.bin", tmp);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const ph::Metainfo m = load(tmp.path / "f.bin.torrent");  // default output name
  CHECK(m.piece_length >= 16384);
  CHECK(m.piece_count() <= 2000);
  check_pieces(m, data);
}

TEST_CASE("bt-create: clear errors") {
  TempDir tmp;
  write(tmp.path / "f.bin", "x");
  write(tmp.path / "zero" / "empty", "");
  fs::create_directories(tmp.path / "nothing");

  Run r = create("missing", tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("No such file") != std::string::npos);
  r = create("-l 1000 f.bin", tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("power of two") != std::string::npos);
  r = create("zero", tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("all files are empty") != std::string::npos);
  r = create("nothing", tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("holds no files") != std::string::npos);
  REQUIRE(create("-q f.bin", tmp).exit_code == 0);
  r = create("-q f.bin", tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("exists") != std::string::npos);
  CHECK(create("-q --force f.bin", tmp).exit_code == 0);
  CHECK(create("--bogus f.bin", tmp).exit_code == 1);
  CHECK(create("", tmp).exit_code == 2);
}
