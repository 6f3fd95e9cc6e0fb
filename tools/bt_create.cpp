// bt-create: makes a v1 .torrent from a file or a directory. Pieces are hashed on every core (each worker takes the
// next piece index from an atomic counter and reads it with pread), with a progress line on stderr. The info dict it
// writes is parsed back with parse_info_dict before saving, so bt-create never emits a torrent we would refuse.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/bencode.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"
#include "net/sha1.hpp"

namespace fs = std::filesystem;

namespace {

struct InputFile {
  fs::path disk_path;
  std::vector<std::string> components;  // relative to the torrent's folder (empty for a single-file torrent)
  std::uint64_t length = 0;
  std::uint64_t offset = 0;
};

struct Options {
  std::string path;
  std::string output;
  std::uint64_t piece_length = 0;  // 0: automatic
  std::vector<std::vector<std::string>> trackers;
  std::vector<std::string> web_seeds;
  std::string comment;
  std::string name;
  bool is_private = false;
  bool force = false;
  bool quiet = false;
  bool no_date = false;
  unsigned threads = 0;  // 0: every core
};

void usage(std::FILE* to) {
  std::fputs(
      "usage: bt-create [options] PATH\n"
      "  -o, --output FILE       where to write (default: NAME.torrent in the current folder)\n"
      "  -l, --piece-length N    piece length in bytes, a power of two >= 16384 (suffixes K, M); default automatic\n"
      "  -t, --tracker URL       add a tracker tier; repeatable; URL,URL puts several in one tier\n"
      "  -w, --web-seed URL      add a web seed (BEP 19); repeatable\n"
      "  -p, --private           set the private flag (BEP 27)\n"
      "  -c, --comment TEXT      comment\n"
      "  -n, --name NAME         torrent name (default: the last component of PATH)\n"
      "      --threads N         hashing threads (default: every core)\n"
      "      --no-date           omit the creation date (reproducible output)\n"
      "  -f, --force             overwrite the output file\n"
      "  -q, --quiet             no progress line\n",
      to);
}

int fail(const std::string& what) {
  std::fprintf(stderr, "bt-create: %s\n", what.c_str());
  return 1;
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t mult = 1;
  const char last = s.back();
  if (last == 'K' || last == 'k') mult = 1024;
  if (last == 'M' || last == 'm') mult = 1024 * 1024;
  if (mult != 1) s.remove_suffix(1);
  std::uint64_t v = 0;
  if (s.empty() || s.size() > 12) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v * mult;
}

// Aims at about 1000-2000 pieces: small enough that a streaming reader waits for little beyond what it plays, large
// enough that the piece list (20 bytes each) stays small. Clamped to 16 KiB .. 16 MiB.
std::uint64_t automatic_piece_length(std::uint64_t total) {
  std::uint64_t pl = 16 * 1024;
  while (pl < (16u << 20) && total / pl > 2000) pl *= 2;
  return pl;
}

ph::Result<std::vector<InputFile>> collect(const fs::path& root) {
  std::error_code ec;
  const auto st = fs::symlink_status(root, ec);
  if (ec) return ph::make_error(root.string() + ": " + ec.message());
  std::vector<InputFile> files;
  if (fs::is_regular_file(st)) {
    files.push_back({root, {}, fs::file_size(root, ec), 0});
    if (ec) return ph::make_error(root.string() + ": " + ec.message());
    return files;
  }
  if (!fs::is_directory(st)) return ph::make_error(root.string() + ": not a regular file or directory");
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto s = it->symlink_status(ec);
    if (ec) break;
    // Symlinks are skipped, not followed: following them could pull in files from outside PATH or loop forever.
    if (fs::is_symlink(s)) {
      std::fprintf(stderr, "bt-create: skipping symlink %s\n", it->path().c_str());
      continue;
    }
    if (!fs::is_regular_file(s)) continue;
    InputFile f;
    f.disk_path = it->path();
    for (const auto& c : fs::relative(it->path(), root)) f.components.push_back(c.string());
    f.length = fs::file_size(it->path(), ec);
    if (ec) break;
    files.push_back(std::move(f));
  }
  if (ec) return ph::make_error(root.string() + ": " + ec.message());
  if (files.empty()) return ph::make_error(root.string() + ": the directory holds no files");
  // A stable order (byte order of the components) makes the same folder give the same info-hash everywhere.
  std::sort(files.begin(), files.end(), [](const InputFile& a, const InputFile& b) { return a.components < b.components; });
  return files;
}

// Hashes every piece of the concatenated files on `threads` workers; reports progress through `done`.
class PieceHasher {
 public:
  PieceHasher(const std::vector<InputFile>& files, std::uint64_t total, std::uint64_t piece_length)
      : files_(files), total_(total), piece_length_(piece_length),
        count_((total + piece_length - 1) / piece_length), hashes_(count_ * 20, '\0') {}

  std::uint64_t count() const { return count_; }
  std::uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  bool failed() const { return failed_.load(); }
  const std::string& error() const { return error_; }
  const std::string& hashes() const { return hashes_; }

  void run(unsigned threads, bool quiet) {
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < threads; ++i) workers.emplace_back([this] { work(); });
    const auto start = std::chrono::steady_clock::now();
    auto last_print = start;
    while (done() < count_ && !failed()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const auto now = std::chrono::steady_clock::now();
      if (!quiet && now - last_print >= std::chrono::milliseconds(250)) {
        progress(start, false);
        last_print = now;
      }
    }
    for (auto& w : workers) w.join();
    if (!quiet) progress(start, true);
  }

 private:
  void progress(std::chrono::steady_clock::time_point start, bool final) const {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::uint64_t n = done();
    const double bytes = static_cast<double>(std::min(total_, n * piece_length_));
    std::fprintf(stderr, "\rbt-create: hashed %llu/%llu pieces (%3.0f%%), %.1f MiB/s   %s",
                 static_cast<unsigned long long>(n), static_cast<unsigned long long>(count_),
                 count_ ? 100.0 * static_cast<double>(n) / static_cast<double>(count_) : 100.0,
                 secs > 0 ? bytes / secs / (1024 * 1024) : 0.0, final ? "\n" : "");
    std::fflush(stderr);
  }

  void set_error(std::string e) {
    std::lock_guard lock(mutex_);
    if (!failed_.exchange(true)) error_ = std::move(e);
  }

  struct Fd {  // closes on every exit path of work()
    int v = -1;
    ~Fd() {
      if (v >= 0) ::close(v);
    }
  };

  void work() {
    std::string buf(piece_length_, '\0');
    Fd fd;
    std::size_t fd_file = SIZE_MAX;  // each worker keeps its last file open: consecutive pieces share files
    ph::Sha1 sha;
    while (!failed()) {
      const std::uint64_t p = next_.fetch_add(1);
      if (p >= count_) break;
      const std::uint64_t begin = p * piece_length_;
      const std::uint64_t size = std::min(piece_length_, total_ - begin);
      // First file that holds byte `begin` (skipping empty files).
      std::size_t fi = static_cast<std::size_t>(
          std::upper_bound(files_.begin(), files_.end(), begin,
                           [](std::uint64_t v, const InputFile& f) { return v < f.offset + f.length; }) -
          files_.begin());
      std::uint64_t filled = 0;
      while (filled < size) {
        if (fi >= files_.size()) return set_error("internal error: piece runs past the last file");
        const InputFile& f = files_[fi];
        const std::uint64_t pos = begin + filled - f.offset;
        if (f.length == 0 || pos >= f.length) {
          ++fi;
          continue;
        }
        if (fd_file != fi) {
          if (fd.v >= 0) ::close(fd.v);
          fd.v = ::open(f.disk_path.c_str(), O_RDONLY | O_CLOEXEC);
          fd_file = fi;
          if (fd.v < 0) return set_error(f.disk_path.string() + ": " + std::strerror(errno));
        }
        const std::uint64_t want = std::min(size - filled, f.length - pos);
        const ssize_t got = ::pread(fd.v, buf.data() + filled, want, static_cast<off_t>(pos));
        if (got < 0) return set_error(f.disk_path.string() + ": " + std::strerror(errno));
        if (got == 0) return set_error(f.disk_path.string() + ": file shrank while hashing");
        filled += static_cast<std::uint64_t>(got);
      }
      sha.update(std::string_view(buf.data(), size));
      const auto d = sha.finish();
      std::memcpy(hashes_.data() + p * 20, d.bytes.data(), 20);
      done_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const std::vector<InputFile>& files_;
  const std::uint64_t total_;
  const std::uint64_t piece_length_;
  const std::uint64_t count_;
  std::string hashes_;
  std::atomic<std::uint64_t> next_{0};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::string error_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        fail("option " + std::string(name) + " needs a value");
        return std::nullopt;
      }
      return std::string(args[++i]);
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-o" || a == "--output") {
      auto v = value(a);
      if (!v) return 2;
      o.output = *v;
    } else if (a == "-l" || a == "--piece-length") {
      auto v = value(a);
      if (!v) return 2;
      auto n = parse_size(*v);
      if (!n || *n < 16384 || (*n & (*n - 1)) != 0 || *n > (256u << 20)) {
        return fail("--piece-length " + *v + " is not a power of two between 16 KiB and 256 MiB");
      }
      o.piece_length = *n;
    } else if (a == "-t" || a == "--tracker" || a == "-a" || a == "--announce") {
      auto v = value(a);
      if (!v) return 2;
      std::vector<std::string> tier;
      std::size_t start = 0;
      while (start <= v->size()) {
        std::size_t comma = v->find(',', start);
        if (comma == std::string::npos) comma = v->size();
        if (comma > start) tier.push_back(v->substr(start, comma - start));
        start = comma + 1;
      }
      if (!tier.empty()) o.trackers.push_back(std::move(tier));
    } else if (a == "-w" || a == "--web-seed") {
      auto v = value(a);
      if (!v) return 2;
      o.web_seeds.push_back(*v);
    } else if (a == "-c" || a == "--comment") {
      auto v = value(a);
      if (!v) return 2;
      o.comment = *v;
    } else if (a == "-n" || a == "--name") {
      auto v = value(a);
      if (!v) return 2;
      o.name = *v;
    } else if (a == "--threads") {
      auto v = value(a);
      if (!v) return 2;
      auto n = parse_size(*v);
      if (!n || *n == 0 || *n > 256) return fail("--threads must be 1..256");
      o.threads = static_cast<unsigned>(*n);
    } else if (a == "-p" || a == "--private") {
      o.is_private = true;
    } else if (a == "--no-date") {
      o.no_date = true;
    } else if (a == "-f" || a == "--force") {
      o.force = true;
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      usage(stderr);
      return fail("unknown option " + std::string(a));
    } else if (o.path.empty()) {
      o.path = std::string(a);
    } else {
      usage(stderr);
      return fail("only one PATH may be given");
    }
  }
  if (o.path.empty()) {
    usage(stderr);
    return 2;
  }

  fs::path root = fs::path(o.path).lexically_normal();
  if (root.has_filename() == false) root = root.parent_path();  // "dir/" -> "dir"
  auto files = collect(root);
  if (!files) return fail(files.error().message);

  std::string name = o.name.empty() ? fs::absolute(root).lexically_normal().filename().string() : o.name;
  if (auto n = ph::sanitize_path_component(name); !n) return fail("name '" + name + "': " + n.error().message);

  // Checked before hashing, which can take minutes.
  const std::string out_path = o.output.empty() ? name + ".torrent" : o.output;
  if (!o.force && fs::exists(out_path)) return fail(out_path + " exists (use --force to overwrite)");

  std::uint64_t total = 0;
  for (auto& f : *files) {
    f.offset = total;
    total += f.length;
  }
  if (total == 0) return fail(o.path + ": all files are empty; a torrent needs at least one byte");
  const std::uint64_t piece_length = o.piece_length ? o.piece_length : automatic_piece_length(total);

  const bool single = files->size() == 1 && files->front().components.empty();
  const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  PieceHasher hasher(*files, total, piece_length);
  hasher.run(threads, o.quiet);
  if (hasher.failed()) return fail(hasher.error());

  using ph::bencode::Value;
  Value::Dict info;
  info["name"] = name;
  info["piece length"] = static_cast<std::int64_t>(piece_length);
  info["pieces"] = hasher.hashes();
  if (o.is_private) info["private"] = 1;
  if (single) {
    info["length"] = static_cast<std::int64_t>(total);
  } else {
    Value::List list;
    for (const auto& f : *files) {
      Value::Dict d;
      d["length"] = static_cast<std::int64_t>(f.length);
      Value::List path;
      for (const auto& c : f.components) path.emplace_back(c);
      d["path"] = std::move(path);
      list.emplace_back(std::move(d));
    }
    info["files"] = std::move(list);
  }
  auto m = ph::parse_info_dict(Value(std::move(info)).encode());
  if (!m) return fail("refusing to write a torrent we cannot read back: " + m.error().message);
  m->trackers = o.trackers;
  m->web_seeds = o.web_seeds;
  m->comment = o.comment;
  m->created_by = "playhead bt-create 0.1.0";
  m->creation_date = o.no_date ? 0 : static_cast<std::int64_t>(std::time(nullptr));

  const std::string bytes = ph::encode_torrent_file(*m);
  {
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return fail(out_path + ": cannot write");
  }
  ph::Magnet mag;
  mag.info_hash = m->info_hash;
  mag.display_name = m->name;
  for (const auto& tier : m->trackers) mag.trackers.insert(mag.trackers.end(), tier.begin(), tier.end());
  std::printf("info-hash: %s\n", m->info_hash.hex().c_str());
  std::printf("pieces:    %u x %u bytes, %llu bytes in %zu file(s)\n", m->piece_count(), m->piece_length,
              static_cast<unsigned long long>(m->total_length), m->files.size());
  std::printf("written:   %s\n", out_path.c_str());
  std::printf("magnet:    %s\n", ph::to_magnet_uri(mag).c_str());
  return 0;
}
