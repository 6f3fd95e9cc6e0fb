// libFuzzer target: BEP 10 extension payloads — the extension handshake, ut_metadata (BEP 9, including the metadata
// assembler fed whatever sizes the message claims) and ut_pex (BEP 11) and lt_donthave. The first byte selects.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/extension_messages.hpp"
#include "net/types.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      if (auto h = ph::wire::parse_extension_handshake(in)) {
        (void)h->id_of("ut_metadata");
        (void)ph::wire::parse_extension_handshake(ph::wire::encode_extension_handshake(*h));
      }
      break;
    case 1:
      if (auto m = ph::wire::parse_metadata_message(in)) {
        if (m->type == ph::wire::MetadataMsgType::data) {
          ph::wire::MetadataAssembler asm_;
          // A lying total_size must be refused or bounded by max_size, never allocated blindly.
          if (asm_.reset(m->total_size, 1 << 20)) {
            (void)asm_.add(*m);
            if (asm_.complete()) (void)asm_.verify(ph::InfoHash{});
          }
        }
      }
      break;
    case 2:
      if (auto p = ph::wire::parse_pex(in)) (void)ph::wire::parse_pex(ph::wire::encode_pex(*p));
      break;
    default:
      (void)ph::wire::parse_donthave(in);
      break;
  }
  return 0;
}
