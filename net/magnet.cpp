// Magnet URI parsing and writing (BEP 9, BEP 53 `so`); v2 `btmh` links are recognised and refused (BEP 52).
#include "net/magnet.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace ph {

namespace {

Error fail(std::string message) { return make_error("magnet: " + std::move(message)); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != lower(prefix[i])) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 4648 base32 (A-Z, 2-7), case-insensitive, exactly 32 characters -> 20 bytes, no padding.
std::optional<InfoHash> base32_info_hash(std::string_view s) {
  if (s.size() != 32) return std::nullopt;
  InfoHash h;
  std::uint64_t acc = 0;
  int bits = 0;
  std::size_t out = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      return std::nullopt;
    }
    acc = (acc << 5) | static_cast<std::uint64_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      h.bytes[out++] = static_cast<std::uint8_t>(acc >> bits);
      acc &= (std::uint64_t{1} << bits) - 1;
    }
  }
  return h;  // 32 * 5 = 160 bits exactly, nothing left over
}

Result<InfoHash> parse_btih(std::string_view hash) {
  if (hash.size() == 40) {
    if (auto h = Id20::from_hex(hash)) return *h;
    return fail("xt=urn:btih: has 40 characters but they are not all hex digits");
  }
  if (hash.size() == 32) {
    if (auto h = base32_info_hash(hash)) return *h;
    return fail("xt=urn:btih: has 32 characters but they are not all base32 (A-Z, 2-7)");
  }
  return fail("xt=urn:btih: must be 40 hex or 32 base32 characters, found " + std::to_string(hash.size()));
}

Result<std::uint32_t> parse_index(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return fail("so: '" + std::string(s) + "' is not a file index");
  }
  return v;
}

Result<void> parse_select_only(std::string_view value, Magnet& m) {
  if (value.empty()) return fail("so: empty file selection");
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(start, comma - start);
    const std::size_t dash = item.find('-');
    auto first = parse_index(item.substr(0, dash));
    if (!first) return first.error();
    std::uint32_t last = *first;
    if (dash != std::string_view::npos) {
      auto l = parse_index(item.substr(dash + 1));
      if (!l) return l.error();
      last = *l;
      if (last < *first) return fail("so: range '" + std::string(item) + "' ends before it starts");
    }
    m.select_only.emplace_back(*first, last);
    start = comma + 1;
  }
  return {};
}

void push_unique(std::vector<std::string>& v, std::string s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

// "tr", "tr.1", "tr.2": some writers number repeated keys.
bool key_is(std::string_view key, std::string_view name) {
  if (key == name) return true;
  if (key.size() <= name.size() + 1 || key.substr(0, name.size()) != name || key[name.size()] != '.') return false;
  return std::all_of(key.begin() + static_cast<std::ptrdiff_t>(name.size()) + 1, key.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) {
        return make_error("truncated percent escape at character " + std::to_string(i));
      }
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return make_error("bad percent escape '" + std::string(s.substr(i, 3)) + "'");
      out += static_cast<char>(hi << 4 | lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
  return out;
}

Result<Magnet> parse_magnet(std::string_view uri, const MagnetLimits& limits) {
  if (uri.size() > limits.max_length) {
    return fail("link is " + std::to_string(uri.size()) + " characters, longer than the limit of " +
                std::to_string(limits.max_length));
  }
  if (!starts_with_ci(uri, "magnet:")) return fail("not a magnet link (expected it to start with 'magnet:?')");
  std::string_view query = uri.substr(7);
  if (!query.empty() && query.front() == '?') query.remove_prefix(1);
  if (auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);

  Magnet m;
  bool have_btih = false;
  bool saw_btmh = false;
  std::string other_xt;
  std::size_t entries = 0;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view param = query.substr(start, amp - start);
    start = amp + 1;
    if (param.empty()) continue;
    const std::size_t eq = param.find('=');
    const std::string_view key = param.substr(0, eq);
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    auto value = percent_decode(raw, key == "dn");
    if (!value) return fail(std::string(key) + ": " + value.error().message);
    std::string& v = *value;

    if (key_is(key, "xt")) {
      if (starts_with_ci(v, "urn:btih:")) {
        auto h = parse_btih(std::string_view(v).substr(9));
        if (!h) return h.error();
        if (have_btih && *h != m.info_hash) return fail("two different urn:btih info-hashes in one link");
        m.info_hash = *h;
        have_btih = true;
      } else if (starts_with_ci(v, "urn:btmh:")) {
        saw_btmh = true;  // a hybrid link carries btih too, and that is what we use
      } else {
        other_xt = v;
      }
      continue;
    }
    if (key == "dn") {
      m.display_name = std::move(v);
      continue;
    }
    const bool counted = key_is(key, "tr") || key_is(key, "ws") || key_is(key, "x.pe") || key == "so";
    if (counted && ++entries > limits.max_entries) {
      return fail("more than " + std::to_string(limits.max_entries) + " trackers, web seeds, peers and ranges");
    }
    if (key_is(key, "tr")) {
      push_unique(m.trackers, std::move(v));
    } else if (key_is(key, "ws")) {
      push_unique(m.web_seeds, std::move(v));
    } else if (key_is(key, "x.pe")) {
      // BEP 9 allows hostname:port too; PeerAddress holds numbers only, so such peers are skipped, not fatal.
      if (auto a = PeerAddress::parse(v); a && std::find(m.peers.begin(), m.peers.end(), *a) == m.peers.end()) {
        m.peers.push_back(*a);
      }
    } else if (key == "so") {
      if (auto r = parse_select_only(v, m); !r) return r.error();
      if (m.select_only.size() > limits.max_entries) return fail("so: too many ranges");
    }
    // Other keys (xl, kt, as, mt, x.*) are ignored: they carry nothing we use.
  }

  if (!have_btih) {
    if (saw_btmh) return fail("v2-only link (xt=urn:btmh:): not supported yet (BEP 52)");
    if (!other_xt.empty()) return fail("xt '" + other_xt + "' is not a BitTorrent info-hash (expected urn:btih:)");
    return fail("missing xt=urn:btih: parameter");
  }
  return m;
}

std::string to_magnet_uri(const Magnet& m) {
  std::string out = "magnet:?xt=urn:btih:" + m.info_hash.hex();
  if (!m.display_name.empty()) out += "&dn=" + percent_encode(m.display_name);
  for (const auto& t : m.trackers) out += "&tr=" + percent_encode(t);
  for (const auto& w : m.web_seeds) out += "&ws=" + percent_encode(w);
  for (const auto& p : m.peers) out += "&x.pe=" + percent_encode(p.to_string());
  if (!m.select_only.empty()) {
    out += "&so=";
    bool first = true;
    for (auto [a, b] : m.select_only) {
      if (!first) out += ',';
      first = false;
      out += std::to_string(a);
      if (b != a) out += '-' + std::to_string(b);
    }
  }
  return out;
}

}  // namespace ph
