// Codec throughput: bencode decoding and metainfo parsing of a generated 10,000-file torrent, in bytes/s.
// Two shapes: "realistic" (piece hashes for ~1 TB of data dominate the bytes, as in real torrents) and "file list"
// (tiny pieces blob, so nearly every byte is structure: the decoder's worst case per byte).
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "net/bencode.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"

namespace {

using ph::bencode::Value;

std::string make_torrent(std::size_t files, bool realistic) {
  std::mt19937_64 rng(42);
  const std::int64_t piece_length = realistic ? (4 << 20) : (16 << 20);
  Value::List list;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < files; ++i) {
    Value::Dict f;
    const std::int64_t len = realistic ? static_cast<std::int64_t>(rng() % (200ull << 20)) + 1
                                       : static_cast<std::int64_t>(rng() % 4096) + 1;
    f["length"] = len;
    f["path"] = Value::List{"Season " + std::to_string(i / 500 + 1), "Disc " + std::to_string(i / 50 % 10),
                            "episode " + std::to_string(i) + " - a reasonably long title.mkv"};
    list.emplace_back(std::move(f));
    total += len;
  }
  Value::Dict info;
  info["name"] = "A Big Collection";
  info["piece length"] = piece_length;
  info["files"] = std::move(list);
  const auto pieces = static_cast<std::size_t>((total + piece_length - 1) / piece_length);
  std::string hashes(pieces * 20, '\0');
  for (auto& c : hashes) c = static_cast<char>(rng());
  info["pieces"] = std::move(hashes);
  Value::Dict root;
  root["announce"] = "udp://tracker.example:1337/announce";
  root["announce-list"] = Value::List{Value::List{"udp://tracker.example:1337/announce"},
                                      Value::List{"http://tracker2.example/announce"}};
  root["created by"] = "codec_bench";
  root["info"] = std::move(info);
  return Value(std::move(root)).encode();
}

const std::string& torrent(bool realistic) {
  static const std::string r = make_torrent(10'000, true);
  static const std::string f = make_torrent(10'000, false);
  return realistic ? r : f;
}

void BM_BencodeDecode(benchmark::State& state) {
  const std::string& t = torrent(state.range(0) != 0);
  for (auto _ : state) {
    auto doc = ph::bencode::decode(t);
    if (!doc) state.SkipWithError(doc.error().message.c_str());
    benchmark::DoNotOptimize(doc);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(t.size()));
  state.counters["torrent_bytes"] = static_cast<double>(t.size());
}
BENCHMARK(BM_BencodeDecode)->ArgName("realistic")->Arg(1)->Arg(0);

void BM_MetainfoParse(benchmark::State& state) {
  const std::string& t = torrent(state.range(0) != 0);
  for (auto _ : state) {
    auto m = ph::parse_metainfo(t);
    if (!m) state.SkipWithError(m.error().message.c_str());
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(t.size()));
  state.counters["files_per_s"] =
      benchmark::Counter(10'000.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MetainfoParse)->ArgName("realistic")->Arg(1)->Arg(0);

void BM_MagnetParse(benchmark::State& state) {
  const std::string link =
      "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Big%20Buck%20Bunny&tr=udp%3A%2F%2Ftracker."
      "example%3A1337%2Fannounce&tr=http%3A%2F%2Ft2.example%2Fannounce&ws=http%3A%2F%2Fws.example%2F&so=0,2-4";
  for (auto _ : state) {
    auto m = ph::parse_magnet(link);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(link.size()));
}
BENCHMARK(BM_MagnetParse);

}  // namespace

BENCHMARK_MAIN();
