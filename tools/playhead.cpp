// playhead: the streaming server. Until the server lands it prints its version and exits.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0) {
      std::puts("usage: playhead [MAGNET|FILE.torrent ...]\n  --version  print the version");
      return 0;
    }
  }
  std::puts("playhead 0.1.0");
  return 0;
}
