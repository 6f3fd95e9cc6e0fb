// libFuzzer target: the strict bencode decoder. Walks every decoded node (raw(), find, iteration) so a bad token
// table shows up as an ASan report, and checks that a decoded document's root spans exactly the input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/bencode.hpp"

namespace {

void walk(const ph::bencode::Node& n, int depth) {
  if (depth > 200) return;
  (void)n.raw();
  if (n.is_int()) (void)n.as_int();
  if (n.is_string()) (void)n.as_string();
  if (n.is_list())
    for (const auto& c : n.list()) walk(c, depth + 1);
  if (n.is_dict()) {
    for (const auto& [k, v] : n.dict()) {
      (void)n.find(k);
      walk(v, depth + 1);
    }
    (void)n.find_int("length");
    (void)n.find_string("name");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto doc = ph::bencode::decode(in);
  if (!doc) return 0;
  const auto root = doc->root();
  if (root.raw().size() != in.size()) __builtin_trap();  // strict: the root is the whole input
  walk(root, 0);
  return 0;
}
