// ASCII text helpers shared by the parsers (.env files, HTTP requests, tracker responses, Range headers).
#pragma once

#include <string>
#include <string_view>

namespace ph::text {

// Lower-cases ASCII letters only: protocol tokens (header names, option names) are ASCII, and the locale must not
// change how they compare.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Strips any of `chars` from both ends; by default HTTP's optional whitespace (space and horizontal tab).
inline std::string_view trim(std::string_view s, std::string_view chars = " \t") {
  const auto first = s.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

}  // namespace ph::text
