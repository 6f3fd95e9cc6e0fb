// Magnet links (BEP 9): parsing `magnet:?xt=urn:btih:...` with dn, tr, x.pe, ws and so (BEP 53), and writing them
// back. Only v1 info-hashes are supported; v2 (`urn:btmh:`, BEP 52) is recognised and refused with a clear error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph {

struct Magnet {
  InfoHash info_hash;
  std::string display_name;                  // dn
  std::vector<std::string> trackers;         // tr, in order, duplicates removed
  std::vector<PeerAddress> peers;            // x.pe (numeric addresses; host names cannot be represented and are skipped)
  std::vector<std::string> web_seeds;        // ws
  std::vector<std::pair<std::uint32_t, std::uint32_t>> select_only;  // so: inclusive file index ranges (BEP 53)

  bool operator==(const Magnet&) const = default;
};

struct MagnetLimits {
  std::size_t max_length = 64 * 1024;  // longer links are refused before parsing
  std::size_t max_entries = 1024;      // tr + ws + x.pe + so ranges, together
};

// Parses a magnet URI. Errors name the offending parameter: a missing or malformed xt, a bad percent escape, a
// malformed so range, a v2-only link.
Result<Magnet> parse_magnet(std::string_view uri, const MagnetLimits& limits = {});

// Writes a magnet URI (info-hash as 40 lowercase hex, values percent-encoded). parse_magnet(to_magnet_uri(m)) == m.
std::string to_magnet_uri(const Magnet& m);

// Decodes %XY escapes; fails on a truncated or non-hex escape. `plus_is_space` maps '+' to ' ' (form encoding).
Result<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

// Encodes every byte outside RFC 3986's unreserved set.
std::string percent_encode(std::string_view s);

}  // namespace ph
