// libFuzzer target: KRPC datagrams (BEP 5). Anything decoded must re-encode to something that decodes again, and
// the compact node/peer helpers must cope with arbitrary byte strings.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "net/krpc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  ph::krpc::DecodeFailure failure;
  if (auto m = ph::krpc::decode(in, {}, &failure)) {
    if (!ph::krpc::decode(ph::krpc::encode(*m))) __builtin_trap();
  }
  std::vector<ph::krpc::NodeInfo> nodes;
  (void)ph::krpc::decode_compact_nodes(in, size % 2 == 0, nodes);
  (void)ph::krpc::decode_compact_peer(in);
  return 0;
}
