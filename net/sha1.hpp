// SHA-1 through OpenSSL's EVP interface: one-shot digests and an incremental hasher.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ph {

struct Sha1Digest {
  std::array<std::uint8_t, 20> bytes{};

  std::string hex() const;
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  static Sha1Digest from_bytes(std::string_view twenty_bytes);  // precondition: size() == 20
  auto operator<=>(const Sha1Digest&) const = default;
};

class Sha1 {
 public:
  Sha1();
  ~Sha1();
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view data) { update(std::as_bytes(std::span(data.data(), data.size()))); }
  Sha1Digest finish();  // also resets, ready for the next message

  static Sha1Digest of(std::string_view data);
  static Sha1Digest of(std::span<const std::byte> data);

 private:
  void* ctx_;  // EVP_MD_CTX, kept opaque so callers do not include OpenSSL
};

}  // namespace ph
