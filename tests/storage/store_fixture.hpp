// Shared fixture for the store tests: a random torrent in memory, an io_context with bounded waits, temp folders.
#pragma once

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "net/sha1.hpp"
#include "storage/file_layout.hpp"

namespace ph::storage::test {

// A torrent's bytes and piece hashes, made from a seeded generator.
struct Torrent {
  std::vector<std::byte> data;
  std::string hashes;
  std::uint32_t piece_length = 0;
  std::vector<LayoutFile> files;

  Torrent(std::uint32_t piece_len, std::vector<LayoutFile> file_list, std::uint32_t seed = 1)
      : piece_length(piece_len), files(std::move(file_list)) {
    std::uint64_t total = 0;
    for (auto& f : files) total += f.length;
    data.resize(total);
    std::mt19937 rng(seed);
    std::uint64_t pos = 0;
    for (auto& f : files) {
      // Padding is zeros, as BEP 47 requires.
      for (std::uint64_t i = 0; i < f.length; ++i) data[pos + i] = f.pad ? std::byte{0} : std::byte(rng() & 0xff);
      pos += f.length;
    }
    for (std::uint64_t off = 0; off < total; off += piece_length) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(piece_length, total - off));
      hashes += std::string(Sha1::of(std::span<const std::byte>(data.data() + off, n)).view());
    }
  }
  FileLayout layout() const {
    auto l = FileLayout::make(piece_length, static_cast<std::uint32_t>(hashes.size() / 20), files);
    REQUIRE(l.ok());
    return std::move(*l);
  }
  std::span<const std::byte> block(PieceIndex p, std::uint32_t offset, std::uint32_t len) const {
    return {data.data() + std::uint64_t{p} * piece_length + offset, len};
  }
};

// Runs handlers until pred() holds; fails the test after `limit`.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "playhead-storage-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::size_t entries_under(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir); it != std::filesystem::recursive_directory_iterator(); ++it) ++n;
  return n;
}

}  // namespace ph::storage::test
