#include "net/types.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace ph {

std::string to_hex(const std::uint8_t* bytes, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

std::string Id20::hex() const { return to_hex(bytes.data(), bytes.size()); }

Id20 Id20::from_bytes(std::string_view twenty) {
  Id20 id;
  std::memcpy(id.bytes.data(), twenty.data(), std::min<std::size_t>(20, twenty.size()));
  return id;
}

std::optional<Id20> Id20::from_hex(std::string_view hex) {
  if (hex.size() != 40) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Id20 id;
  for (std::size_t i = 0; i < 20; ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return id;
}

bool Id20::is_zero() const {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

PeerAddress PeerAddress::v4(std::uint32_t host_order_ip, std::uint16_t port) {
  PeerAddress a;
  a.ip[0] = static_cast<std::uint8_t>(host_order_ip >> 24);
  a.ip[1] = static_cast<std::uint8_t>(host_order_ip >> 16);
  a.ip[2] = static_cast<std::uint8_t>(host_order_ip >> 8);
  a.ip[3] = static_cast<std::uint8_t>(host_order_ip);
  a.port = port;
  return a;
}

std::optional<PeerAddress> PeerAddress::parse(std::string_view text) {
  PeerAddress a;
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    a.v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  a.port = static_cast<std::uint16_t>(port);
  if (inet_pton(a.v6 ? AF_INET6 : AF_INET, host.c_str(), a.ip.data()) != 1) return std::nullopt;
  return a;
}

std::string PeerAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, ip.data(), buf, sizeof buf);
  // Appended piecewise: g++ 12 at -O3 reports a false -Wrestrict on `"[" + std::string(buf)` (breaks -Werror).
  std::string out;
  if (v6) out += '[';
  out += buf;
  out += v6 ? "]:" : ":";
  out += std::to_string(port);
  return out;
}

}  // namespace ph
