// DiskStore: safe file opening, positional reads/writes of pieces across file boundaries, and the startup recheck.
#include "storage/disk_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <asio/post.hpp>

#include <array>
#include <cerrno>
#include <cstring>

namespace ph::storage {

namespace {

std::string errno_text(const char* what, const std::string& name) {
  return std::string(what) + " " + name + ": " + std::strerror(errno);
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct DiskStore::Recheck {
  std::function<void(std::uint32_t)> done;
  PieceIndex next = 0;
  std::uint32_t in_flight = 0;
  std::uint32_t found = 0;
};

DiskStore::~DiskStore() { shutdown(); }

bool DiskStore::safe_component(std::string_view c) {
  if (c.empty() || c == "." || c == ".." || c.size() > 255) return false;
  for (char ch : c) {
    if (ch == '/' || ch == '\\' || ch == '\0') return false;
  }
  return true;
}

DiskStore::DiskStore(Arena& arena, Hasher& hasher, FileLayout layout, std::string piece_hashes,
                     std::vector<std::vector<std::string>> paths, std::filesystem::path download_dir)
    : ArenaStore(arena, hasher, std::move(layout), std::move(piece_hashes)),
      paths_(std::move(paths)),
      root_(std::move(download_dir)) {
  set_backed();
}

Result<std::unique_ptr<DiskStore>> DiskStore::create(Arena& arena, Hasher& hasher, FileLayout layout,
                                                     std::string piece_hashes,
                                                     std::vector<std::vector<std::string>> paths,
                                                     std::filesystem::path download_dir) {
  if (paths.size() != layout.file_count()) return make_error("disk store: one path per file is needed");
  if (piece_hashes.size() != static_cast<std::size_t>(layout.piece_count()) * 20) {
    return make_error("disk store: piece hash count does not match the layout");
  }
  for (FileIndex f = 0; f < paths.size(); ++f) {
    if (layout.file(f).pad) continue;
    if (paths[f].empty()) return make_error("disk store: file " + std::to_string(f) + " has no path");
    for (const std::string& c : paths[f]) {
      if (!safe_component(c)) return make_error("disk store: refusing unsafe path component \"" + c + "\"");
    }
  }
  if (download_dir.empty()) return make_error("disk store: no download folder");
  return std::make_unique<DiskStore>(arena, hasher, std::move(layout), std::move(piece_hashes), std::move(paths),
                                     std::move(download_dir));
}

Result<std::unique_ptr<DiskStore>> DiskStore::create(Arena& arena, Hasher& hasher, const Metainfo& m,
                                                     std::filesystem::path download_dir) {
  auto layout = FileLayout::from_metainfo(m);
  if (!layout) return layout.error();
  std::vector<std::vector<std::string>> paths;
  paths.reserve(m.files.size());
  for (const FileEntry& e : m.files) paths.push_back(e.path);
  return create(arena, hasher, std::move(*layout), m.piece_hashes, std::move(paths), std::move(download_dir));
}

Result<int> DiskStore::open_file(FileIndex f, bool create, bool direct) const {
  // Runs on workers: only reads members that never change after construction.
  if (create) {
    std::error_code ec;
    std::filesystem::create_directories(root_, ec);
    if (ec) return make_error("cannot create " + root_.string() + ": " + ec.message());
  }
  Fd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0) return make_error(errno_text("cannot open", root_.string()));
  const auto& comps = paths_[f];
  for (std::size_t i = 0; i + 1 < comps.size(); ++i) {
    int next = ::openat(dir.fd, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.fd, comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return make_error(errno_text("cannot create folder", comps[i]));
      }
      next = ::openat(dir.fd, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) return make_error(errno_text("cannot open folder", comps[i]));
    ::close(dir.fd);
    dir.fd = next;
  }
  // O_NONBLOCK: a FIFO planted under the file's name must not hang a worker; it is refused just below.
  const int flags = (create ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  Fd file(::openat(dir.fd, comps.back().c_str(), flags | (direct ? O_DIRECT : 0), 0644));
  if (file.fd < 0 && direct && errno == EINVAL) file.fd = ::openat(dir.fd, comps.back().c_str(), flags, 0644);
  if (file.fd < 0) return make_error(errno_text("cannot open", comps.back()));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return make_error(errno_text("cannot stat", comps.back()));
  if (!S_ISREG(st.st_mode)) return make_error("not a regular file: " + comps.back());
  const auto length = static_cast<off_t>(layout().file(f).length);
  // Full length at once, as a sparse file: holes cost no disk until written.
  if (create && st.st_size < length && ::ftruncate(file.fd, length) != 0) {
    return make_error(errno_text("cannot size", comps.back()));
  }
  return std::exchange(file.fd, -1);
}

template <class SegmentFn>
Result<void> DiskStore::transfer(PieceIndex p, bool write, SegmentFn&& for_each_segment) const {
  Result<void> result;
  layout().for_each_file_slice(p, 0, layout().piece_size(p), [&](const Slice& s) {
    if (!result) return;
    if (s.pad) {
      // Padding is never written; reading it yields zeros.
      if (!write) for_each_segment(s.piece_offset, s.length, [](std::span<std::byte> seg) {
        std::memset(seg.data(), 0, seg.size());
      });
      return;
    }
    // Whole pages of a piece are written with O_DIRECT, from the arena straight to the device: copying them into
    // fresh page-cache pages was most of a disk-mode download's CPU (3.4 -> 1.45 CPU s per GiB, 1 GiB from a
    // libtorrent seeder on this machine), and the page cache would only hold a second copy of what the arena has.
    // Arena blocks are page-aligned, so a slice is direct-capable when its file offset, piece offset and length are
    // whole pages; the rest (a file's last piece, slices of multi-file torrents that do not line up) is buffered.
    const bool direct =
        write && s.file_offset % kPageBytes == 0 && s.piece_offset % kPageBytes == 0 && s.length % kPageBytes == 0;
    auto fd = open_file(s.file, write, direct);
    if (!fd) {
      result = fd.error();
      return;
    }
    Fd guard(*fd);
    // Adjacent arena blocks merge into one iovec, and up to kBatch iovecs go in one pwritev/preadv: a 1 MiB piece
    // costs a syscall or two instead of 64.
    constexpr int kBatch = 64;
    std::array<iovec, kBatch> iov{};
    int count = 0;
    std::uint64_t file_pos = s.file_offset;
    auto submit = [&] {
      int first = 0;
      while (result && first < count) {
        const ssize_t n = write ? ::pwritev(guard.fd, &iov[first], count - first, static_cast<off_t>(file_pos))
                                : ::preadv(guard.fd, &iov[first], count - first, static_cast<off_t>(file_pos));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL && direct && (::fcntl(guard.fd, F_GETFL) & O_DIRECT)) {
          // The file system accepted O_DIRECT at open but refuses this transfer: write through the page cache.
          ::fcntl(guard.fd, F_SETFL, ::fcntl(guard.fd, F_GETFL) & ~O_DIRECT);
          continue;
        }
        if (n < 0) {
          result = make_error(errno_text(write ? "write failed on" : "read failed on", paths_[s.file].back()));
        } else if (n == 0) {
          result = make_error("file too short: " + paths_[s.file].back());
        } else {
          file_pos += static_cast<std::uint64_t>(n);
          auto left = static_cast<std::size_t>(n);
          while (left > 0 && left >= iov[first].iov_len) left -= iov[first++].iov_len;  // whole iovecs done
          if (left > 0) {  // a short transfer stopped inside this iovec
            iov[first].iov_base = static_cast<std::byte*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
          }
        }
      }
      count = 0;
    };
    for_each_segment(s.piece_offset, s.length, [&](std::span<std::byte> seg) {
      if (!result) return;
      if (count > 0 && static_cast<std::byte*>(iov[count - 1].iov_base) + iov[count - 1].iov_len == seg.data()) {
        iov[count - 1].iov_len += seg.size();
        return;
      }
      if (count == kBatch) submit();
      iov[count++] = iovec{seg.data(), seg.size()};
    });
    submit();
  });
  return result;
}

Result<void> DiskStore::persist(PieceIndex p, const PieceBytes& bytes) {
  // Zero-length files hold no piece, so no write would ever create them; the first write does, once.
  std::call_once(empty_files_, [this] {
    for (FileIndex f = 0; f < layout().file_count(); ++f) {
      if (layout().file(f).length != 0 || layout().file(f).pad) continue;
      if (auto fd = open_file(f, true)) ::close(*fd);
    }
  });
  return transfer(p, true, [&](std::uint32_t off, std::uint32_t len, auto&& f) { bytes.for_each_segment(off, len, f); });
}

Result<void> DiskStore::load(PieceIndex p, const PieceBytes& bytes) {
  return transfer(p, false, [&](std::uint32_t off, std::uint32_t len, auto&& f) { bytes.for_each_segment(off, len, f); });
}

void DiskStore::recheck(std::function<void(std::uint32_t pieces_had)> done) {
  recheck_ = std::make_unique<Recheck>();
  recheck_->done = std::move(done);
  std::error_code ec;
  if (!std::filesystem::exists(root_, ec)) recheck_->next = layout().piece_count();  // nothing on disk yet
  recheck_step();
}

void DiskStore::recheck_step() {
  Recheck& r = *recheck_;
  // A few pieces in flight keep every worker busy while bounding the read buffers to one piece per worker.
  const std::uint32_t depth = hasher().workers() + 1;
  while (r.in_flight < depth && r.next < layout().piece_count()) {
    const PieceIndex p = r.next++;
    ++r.in_flight;
    std::weak_ptr<bool> alive = this->alive();
    hasher().run(client(), [this, p, alive] {
      thread_local std::vector<std::byte> buffer;
      const std::uint32_t size = layout().piece_size(p);
      buffer.resize(size);
      auto io = transfer(p, false, [&](std::uint32_t off, std::uint32_t len, auto&& f) {
        f(std::span<std::byte>(buffer.data() + off, len));
      });
      bool ok = false;
      if (io) {
        Sha1 sha;
        sha.update(std::span<const std::byte>(buffer.data(), size));
        const std::string_view hashes = piece_hashes();
        ok = sha.finish() == Sha1Digest::from_bytes(hashes.substr(p * 20ull, 20));
      }
      asio::post(hasher().io(), [this, p, ok, alive] {
        if (alive.expired()) return;
        --recheck_->in_flight;
        if (ok) {
          mark_had(p);
          ++recheck_->found;
        }
        recheck_step();
      });
    });
  }
  if (r.in_flight == 0 && r.next >= layout().piece_count() && r.done) {
    auto done = std::move(r.done);
    r.done = nullptr;
    const std::uint32_t found = r.found;
    std::weak_ptr<bool> alive = this->alive();
    asio::post(hasher().io(), [done = std::move(done), found, alive] {
      if (!alive.expired()) done(found);
    });
  }
}

}  // namespace ph::storage
