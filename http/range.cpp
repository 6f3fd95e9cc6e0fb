// RFC 9110 section 14 byte ranges; see range.hpp for the policy.
#include "http/range.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "net/text.hpp"

namespace ph::http {
namespace {

constexpr std::uint64_t kMax = ~std::uint64_t{0};

// 1*DIGIT; a value too large for 64 bits saturates, which is what every caller wants (it is then past any length).
std::optional<std::uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    v = (v > (kMax - d) / 10) ? kMax : v * 10 + d;
  }
  return v;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

struct Spec {
  bool suffix = false;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;  // int-range last-pos, or the suffix-length
};

std::optional<Spec> parse_spec(std::string_view s) {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto a = s.substr(0, dash);
  const auto b = s.substr(dash + 1);
  Spec spec;
  if (a.empty()) {
    auto n = parse_digits(b);
    if (!n) return std::nullopt;
    spec.suffix = true;
    spec.last = *n;
    return spec;
  }
  auto first = parse_digits(a);
  if (!first) return std::nullopt;
  spec.first = *first;
  if (!b.empty()) {
    auto last = parse_digits(b);
    if (!last || *last < *first) return std::nullopt;  // last < first makes the whole field invalid
    spec.last = *last;
  }
  return spec;
}

}  // namespace

RangeDecision evaluate_range(std::string_view header, std::uint64_t length, const RangeLimits& limits) {
  RangeDecision full;  // outcome full
  const auto eq = header.find('=');
  if (eq == std::string_view::npos || !iequals(text::trim(header.substr(0, eq)), "bytes")) return full;
  if (length == 0) return full;  // nothing to slice; the empty body is the whole answer

  std::vector<ByteRange> ranges;
  bool any_spec = false;
  std::string_view rest = header.substr(eq + 1);
  while (true) {
    const auto comma = rest.find(',');
    const auto part = text::trim(rest.substr(0, comma));
    if (!part.empty()) {  // the list rule tolerates empty elements
      auto spec = parse_spec(part);
      if (!spec) return full;
      any_spec = true;
      if (spec->suffix) {
        if (*spec->last > 0) ranges.push_back({length - std::min(*spec->last, length), length - 1});
      } else if (spec->first < length) {
        ranges.push_back({spec->first, std::min(spec->last.value_or(kMax), length - 1)});
      }
      if (ranges.size() > limits.max_ranges) return full;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!any_spec) return full;
  if (ranges.empty()) return {RangeOutcome::unsatisfiable, {}};

  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& x, const ByteRange& y) { return x.first < y.first; });
  ByteRange merged = ranges.front();
  for (const auto& r : ranges) {
    if (r.first > merged.last + 1) return full;  // disjoint: would need multipart
    merged.last = std::max(merged.last, r.last);
  }
  return {RangeOutcome::partial, merged};
}

bool if_range_matches(std::string_view if_range, std::string_view etag) {
  const auto v = text::trim(if_range);
  if (v.size() < 2 || v.front() != '"') return false;  // a weak tag (W/"...") or a date: no strong match possible
  return v == etag;
}

std::string content_range(const ByteRange& r, std::uint64_t length) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(length);
}

std::string unsatisfied_range(std::uint64_t length) { return "bytes */" + std::to_string(length); }

}  // namespace ph::http
