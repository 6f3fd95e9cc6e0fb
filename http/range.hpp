// RFC 9110 Range handling, pure: parses a `Range: bytes=...` header against a representation length and decides
// whether to answer 200 (ignore it), 206 (one range) or 416, and evaluates If-Range against our strong ETag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ph::http {

// An inclusive byte range [first, last] of a representation, as Content-Range spells it.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t size() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

enum class RangeOutcome {
  full,           // no usable Range (absent, bad syntax, another unit, several disjoint ranges): 200 with everything
  partial,        // 206 with `range`
  unsatisfiable,  // 416 with `Content-Range: bytes */length`
};

struct RangeDecision {
  RangeOutcome outcome = RangeOutcome::full;
  ByteRange range;
};

struct RangeLimits {
  std::size_t max_ranges = 64;  // a range-set with more parts than this is ignored (served as 200)
};

// Evaluates a Range field value against a representation of `length` bytes. Several ranges are served as one when
// they overlap or touch (RFC 9110 lets a server coalesce), otherwise the header is ignored: we never send
// multipart/byteranges, which no media player needs.
RangeDecision evaluate_range(std::string_view header, std::uint64_t length, const RangeLimits& limits = {});

// If-Range (RFC 9110 13.1.5): true when the condition holds, i.e. the Range may be honoured. Only a strong entity tag
// equal to ours matches; a weak tag or an HTTP-date (we send no Last-Modified) never does.
bool if_range_matches(std::string_view if_range, std::string_view etag);

std::string content_range(const ByteRange& r, std::uint64_t length);  // "bytes 0-99/1000"
std::string unsatisfied_range(std::uint64_t length);                   // "bytes */1000"

}  // namespace ph::http
