// Shared vocabulary: info-hashes, peer ids, peer addresses and the index types every layer speaks in.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ph {

// Lowercase hex of a byte string (info-hashes, peer ids, digests).
std::string to_hex(const std::uint8_t* bytes, std::size_t size);

using PieceIndex = std::uint32_t;  // piece number within a torrent
using FileIndex = std::uint32_t;   // file number within a torrent (padding files included)
using BlockIndex = std::uint32_t;  // 16 KiB block number within a piece

inline constexpr std::uint32_t kBlockSize = 16 * 1024;

// A 20-byte identifier: info-hashes (v1), peer ids and DHT node ids.
struct Id20 {
  std::array<std::uint8_t, 20> bytes{};

  std::string hex() const;
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  static Id20 from_bytes(std::string_view twenty);            // precondition: size() == 20
  static std::optional<Id20> from_hex(std::string_view hex);  // 40 hex digits, either case
  bool is_zero() const;
  auto operator<=>(const Id20&) const = default;
};

using InfoHash = Id20;
using PeerId = Id20;

// An IPv4 or IPv6 address and a port, without pulling Asio into the codecs.
struct PeerAddress {
  std::array<std::uint8_t, 16> ip{};  // IPv4 in the first 4 bytes when !v6
  bool v6 = false;
  std::uint16_t port = 0;

  static PeerAddress v4(std::uint32_t host_order_ip, std::uint16_t port);
  static std::optional<PeerAddress> parse(std::string_view text);  // "1.2.3.4:6881" or "[::1]:6881"
  std::string to_string() const;
  auto operator<=>(const PeerAddress&) const = default;
};

}  // namespace ph
