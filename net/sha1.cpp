#include "net/sha1.hpp"

#include "net/types.hpp"

#include <openssl/evp.h>

#include <cstring>
#include <new>

namespace ph {

std::string Sha1Digest::hex() const { return to_hex(bytes.data(), bytes.size()); }

Sha1Digest Sha1Digest::from_bytes(std::string_view twenty_bytes) {
  Sha1Digest d;
  std::memcpy(d.bytes.data(), twenty_bytes.data(), std::min<std::size_t>(20, twenty_bytes.size()));
  return d;
}

Sha1::Sha1() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha1(), nullptr) != 1) {
    throw std::bad_alloc();
  }
}

Sha1::~Sha1() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha1::update(std::span<const std::byte> data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

Sha1Digest Sha1::finish() {
  Sha1Digest d;
  unsigned int len = 0;
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestFinal_ex(ctx, d.bytes.data(), &len);
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  return d;
}

Sha1Digest Sha1::of(std::span<const std::byte> data) {
  Sha1Digest d;
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.bytes.data(), &len, EVP_sha1(), nullptr);
  return d;
}

Sha1Digest Sha1::of(std::string_view data) { return of(std::as_bytes(std::span(data.data(), data.size()))); }

}  // namespace ph
