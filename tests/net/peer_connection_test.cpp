// PeerConnection over loopback TCP: handshake routing, self-connection detection, messages both ways with byte
// counters, batching, backpressure, and the connect/handshake/idle timeouts. Every wait is bounded.
#include "net/io/peer_connection.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

using namespace ph;
using namespace ph::net;
using namespace std::chrono_literals;

namespace {

Id20 id_of_char(char c) { return Id20::from_bytes(std::string(20, c)); }

struct Recorder : PeerConnectionHandler {
  std::vector<wire::MessageKind> kinds;
  std::vector<std::string> payloads;
  std::optional<wire::Handshake> handshake;
  std::optional<std::string> closed;
  int drained = 0;
  std::function<void(PeerConnection&, const wire::Message&)> on_msg;

  void on_handshake(PeerConnection&, const wire::Handshake& h) override { handshake = h; }
  void on_message(PeerConnection& c, const wire::Message& m) override {
    kinds.push_back(m.kind);
    payloads.emplace_back(m.payload_view());
    if (on_msg) on_msg(c, m);
  }
  void on_closed(PeerConnection&, const std::string& reason) override { closed = reason; }
  void on_send_drained(PeerConnection&) override { ++drained; }
};

// Runs the io_context until `done` holds or the deadline passes.
template <class F>
bool run_until(asio::io_context& io, F done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(10ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

struct Pair {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::shared_ptr<PeerConnection> out, in;
  Recorder out_rec, in_rec;
  InfoHash served = id_of_char('H');
  int routed = 0;

  void connect(PeerConnectionConfig out_cfg, PeerConnectionConfig in_cfg, InfoHash ask) {
    acceptor.async_accept([this, in_cfg](std::error_code ec, asio::ip::tcp::socket s) {
      REQUIRE(!ec);
      in = PeerConnection::incoming(std::move(s), in_cfg, [this](const InfoHash& ih) -> PeerConnectionHandler* {
        ++routed;
        return ih == served ? &in_rec : nullptr;
      });
      in->start();
    });
    out = PeerConnection::outgoing(io, acceptor.local_endpoint(), ask, out_cfg, &out_rec);
    out->start();
  }
};

// send_piece for a block the test keeps alive until it is written: one segment, nothing to hold.
bool send_block(PeerConnection& c, PieceIndex piece, std::uint32_t offset, std::span<const std::byte> block) {
  const std::array<std::span<const std::byte>, 1> one{block};
  return c.send_piece(piece, offset, one, nullptr);
}

PeerConnectionConfig config_for(char c) {
  PeerConnectionConfig cfg;
  cfg.our_peer_id = id_of_char(c);
  return cfg;
}

}  // namespace

TEST_CASE("peer connection: handshake, messages both ways, counters") {
  Pair p;
  p.connect(config_for('a'), config_for('b'), p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.handshake && p.in_rec.handshake; }));
  CHECK(p.routed == 1);
  CHECK(p.out_rec.handshake->peer_id == id_of_char('b'));
  CHECK(p.in_rec.handshake->peer_id == id_of_char('a'));
  CHECK(p.out->remote_supports_fast());
  CHECK(p.out->remote_supports_extensions());
  CHECK(p.in->info_hash() == p.served);
  CHECK(p.out->state() == PeerConnection::State::connected);
  CHECK(p.in->remote_address().to_string().rfind("127.0.0.1:", 0) == 0);

  // A burst queued in one turn goes out in one write, in order.
  std::string block(kBlockSize, 'x');
  auto block_span = std::as_bytes(std::span(block.data(), block.size()));
  CHECK(p.out->send_interested());
  CHECK(p.out->send_request(1, 0, kBlockSize));
  CHECK(p.out->send_extended(0, "d1:md6:ut_pexi1eee"));
  CHECK(p.in->send_unchoke());
  CHECK(send_block(*p.in, 1, 0, block_span));
  CHECK(p.in->send_have_all());
  CHECK(p.in->bytes_queued() == 5 + 13 + kBlockSize + 5);
  REQUIRE(run_until(p.io, [&] { return p.in_rec.kinds.size() == 3 && p.out_rec.kinds.size() == 3; }));
  using K = wire::MessageKind;
  CHECK(p.in_rec.kinds == std::vector<K>{K::interested, K::request, K::extended});
  CHECK(p.in_rec.payloads[2] == "d1:md6:ut_pexi1eee");
  CHECK(p.out_rec.kinds == std::vector<K>{K::unchoke, K::piece, K::have_all});
  CHECK(p.out_rec.payloads[1] == block);
  CHECK(p.in_rec.drained >= 1);
  CHECK(p.out->counters().payload_down == kBlockSize);
  CHECK(p.out->counters().protocol_down == 68 + 5 + 13 + 5);
  CHECK(p.in->counters().payload_up == kBlockSize);
  CHECK(p.in->counters().protocol_up == 68 + 5 + 13 + 5);
  CHECK(p.in->bytes_queued() == 0);

  p.out->close("test over");
  REQUIRE(run_until(p.io, [&] { return p.out_rec.closed && p.in_rec.closed; }));
  CHECK(*p.out_rec.closed == "test over");
  CHECK_THAT(*p.in_rec.closed, Catch::Contains("remote closed"));
  CHECK(!p.out->send_choke());
}

TEST_CASE("peer connection: a gathered block goes out in order, and its memory is held until written") {
  Pair p;
  p.connect(config_for('a'), config_for('b'), p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.handshake && p.in_rec.handshake; }));
  // Two separate buffers make one block, between two ordinary messages; the hold stands for a pinned piece.
  std::string first(kBlockSize / 4, 'f'), second(kBlockSize - first.size(), 's');
  auto hold = std::make_shared<int>(7);
  std::weak_ptr<int> watch = hold;
  const std::array<std::span<const std::byte>, 2> segments{std::as_bytes(std::span(first.data(), first.size())),
                                                            std::as_bytes(std::span(second.data(), second.size()))};
  CHECK(p.in->send_unchoke());
  CHECK(p.in->send_piece(3, kBlockSize, segments, std::move(hold)));
  CHECK(p.in->send_have(3));
  CHECK(p.in->bytes_queued() == 5 + 13 + kBlockSize + 9);
  CHECK(!watch.expired());
  REQUIRE(run_until(p.io, [&] { return p.out_rec.kinds.size() == 3; }));
  using K = wire::MessageKind;
  CHECK(p.out_rec.kinds == std::vector<K>{K::unchoke, K::piece, K::have});
  CHECK(p.out_rec.payloads[1] == first + second);
  CHECK(p.in->counters().payload_up == kBlockSize);
  CHECK(p.in->counters().protocol_up == 68 + 5 + 13 + 9);
  CHECK(p.in->bytes_queued() == 0);
  CHECK(watch.expired());
  // Beyond the queue bound the block is refused and its hold released at once.
  auto big_hold = std::make_shared<int>(8);
  std::weak_ptr<int> big_watch = big_hold;
  std::string huge(5u << 20, 'h');
  const std::array<std::span<const std::byte>, 1> too_much{std::as_bytes(std::span(huge.data(), huge.size()))};
  CHECK(!p.in->send_piece(0, 0, too_much, std::move(big_hold)));
  CHECK(big_watch.expired());
}

TEST_CASE("peer connection: an unserved info-hash is refused by the incoming side") {
  Pair p;
  p.connect(config_for('a'), config_for('b'), id_of_char('Z'));
  REQUIRE(run_until(p.io, [&] { return p.out_rec.closed.has_value() && p.in && !p.in->is_open(); }));
  CHECK(p.routed == 1);
  CHECK_THAT(p.in->close_reason(), Catch::Contains("not served"));
  CHECK(!p.out_rec.handshake);
}

TEST_CASE("peer connection: connecting to ourselves is detected") {
  Pair p;
  p.connect(config_for('s'), config_for('s'), p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.closed.has_value() && p.in && !p.in->is_open(); }));
  CHECK_THAT(p.in->close_reason(), Catch::Contains("ourselves"));
  CHECK(!p.in_rec.handshake);
}

TEST_CASE("peer connection: a protocol violation closes with the decoder's reason") {
  Pair p;
  p.connect(config_for('a'), config_for('b'), p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.handshake && p.in_rec.handshake; }));
  // An extended message beyond the 1 MiB cap, sent raw.
  std::string payload(1024 * 1024 + 10, 'e');
  CHECK(p.in->send_extended(1, payload));
  REQUIRE(run_until(p.io, [&] { return p.out_rec.closed.has_value(); }));
  CHECK_THAT(*p.out_rec.closed, Catch::Contains("protocol error") && Catch::Contains("exceeds cap"));
}

TEST_CASE("peer connection: send_piece refuses beyond the queue bound") {
  Pair p;
  PeerConnectionConfig small = config_for('b');
  small.max_send_queue_bytes = 40 * 1024;
  p.connect(config_for('a'), small, p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.handshake && p.in_rec.handshake; }));
  std::string block(kBlockSize, 'y');
  auto span = std::as_bytes(std::span(block.data(), block.size()));
  CHECK(send_block(*p.in, 0, 0, span));
  CHECK(send_block(*p.in, 0, kBlockSize, span));
  CHECK(!send_block(*p.in, 0, 2 * kBlockSize, span));
  CHECK(p.in->bytes_queued() == 2 * (kBlockSize + 13));
  REQUIRE(run_until(p.io, [&] { return p.out_rec.kinds.size() == 2; }));
  CHECK(p.in->bytes_queued() == 0);
  CHECK(send_block(*p.in, 0, 2 * kBlockSize, span));
}

TEST_CASE("peer connection: connect timeout and handshake timeout") {
  asio::io_context io;
  SECTION("handshake timeout: the listener accepts but never answers") {
    asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::ip::tcp::socket silent(io);
    acceptor.async_accept(silent, [](std::error_code) {});
    Recorder rec;
    PeerConnectionConfig cfg = config_for('a');
    cfg.handshake_timeout = 300ms;
    auto c = PeerConnection::outgoing(io, acceptor.local_endpoint(), id_of_char('H'), cfg, &rec);
    c->start();
    REQUIRE(run_until(io, [&] { return rec.closed.has_value(); }, 3000ms));
    CHECK_THAT(*rec.closed, Catch::Contains("handshake timeout"));
  }
  SECTION("connection refused is reported") {
    asio::ip::tcp::endpoint dead;
    {
      asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      dead = a.local_endpoint();
    }
    Recorder rec;
    auto c = PeerConnection::outgoing(io, dead, id_of_char('H'), config_for('a'), &rec);
    c->start();
    REQUIRE(run_until(io, [&] { return rec.closed.has_value(); }, 3000ms));
    CHECK_THAT(*rec.closed, Catch::Contains("connect failed"));
  }
}

TEST_CASE("peer connection: keep-alives are sent and idle peers are dropped") {
  Pair p;
  PeerConnectionConfig chatty = config_for('a');
  chatty.keepalive_interval = 1000ms;
  PeerConnectionConfig strict = config_for('b');
  strict.idle_timeout = 2500ms;
  strict.keepalive_interval = 60'000ms;
  p.connect(chatty, strict, p.served);
  REQUIRE(run_until(p.io, [&] { return p.out_rec.handshake && p.in_rec.handshake; }));
  // 'a' keeps 'b' alive with keep-alives, so 'b' does not drop it despite its 2.5 s idle timeout.
  REQUIRE(run_until(p.io, [&] { return p.in_rec.kinds.size() >= 3; }, 8000ms));
  for (auto k : p.in_rec.kinds) CHECK(k == wire::MessageKind::keep_alive);
  CHECK(p.in->is_open());
  // 'b' never sends anything: 'a' drops it once its own idle timeout (set low now) passes.
  Pair q;
  PeerConnectionConfig impatient = config_for('c');
  impatient.idle_timeout = 1500ms;
  PeerConnectionConfig mute = config_for('d');
  mute.keepalive_interval = 60'000ms;
  q.connect(impatient, mute, q.served);
  REQUIRE(run_until(q.io, [&] { return q.out_rec.closed.has_value(); }, 6000ms));
  CHECK_THAT(*q.out_rec.closed, Catch::Contains("idle"));
}

TEST_CASE("loopback throughput of piece messages between two connections", "[.bench]") {
  // Hidden (run with "[.bench]"): one io_context thread runs both ends; the sender refills its queue from
  // on_send_drained (the backpressure path the engine uses). Prints MiB/s and CPU seconds per GiB.
  struct Sender : Recorder {
    std::string block = std::string(kBlockSize, 's');
    std::uint64_t to_send = 1ull << 30;
    std::uint64_t queued = 0;
    void pump(PeerConnection& c) {
      auto span = std::as_bytes(std::span(block.data(), block.size()));
      while (queued < to_send && send_block(c, 0, 0, span)) queued += block.size();
    }
    void on_send_drained(PeerConnection& c) override { pump(c); }
  };
  Pair p;
  Sender sender;
  p.acceptor.async_accept([&](std::error_code ec, asio::ip::tcp::socket s) {
    REQUIRE(!ec);
    p.in = PeerConnection::incoming(std::move(s), config_for('b'), [&](const InfoHash&) -> PeerConnectionHandler* {
      return &sender;
    });
    p.in->start();
  });
  p.out = PeerConnection::outgoing(p.io, p.acceptor.local_endpoint(), p.served, config_for('a'), &p.out_rec);
  p.out->start();
  REQUIRE(run_until(p.io, [&] { return sender.handshake.has_value(); }));
  // The receiving recorder would keep every block: count instead.
  std::uint64_t received = 0;
  struct Counter : PeerConnectionHandler {
    std::uint64_t* n;
    void on_handshake(PeerConnection&, const wire::Handshake&) override {}
    void on_message(PeerConnection&, const wire::Message& m) override { *n += m.payload.size(); }
    void on_closed(PeerConnection&, const std::string&) override {}
  } counter;
  counter.n = &received;
  p.out->set_handler(&counter);
  const auto cpu0 = std::clock();
  const auto t0 = std::chrono::steady_clock::now();
  sender.pump(*p.in);
  REQUIRE(run_until(p.io, [&] { return received >= sender.to_send; }, 120'000ms));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  const double gib = static_cast<double>(received) / (1ull << 30);
  std::printf("PeerConnection loopback: %.2f GiB in %.2f s = %.0f MiB/s, %.2f CPU s per GiB (both ends)\n", gib,
              secs, gib * 1024 / secs, cpu / gib);
  CHECK(p.out->counters().payload_down == received);
}
