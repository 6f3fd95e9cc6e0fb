// Hasher: the worker pool that keeps SHA-1 verification (and disk I/O in disk mode) off the network thread.
// Jobs run on workers; their results are posted back to the io_context, so every completion handler runs on the
// network thread. Each store is a client: closing a client drops its queued jobs and waits for its running ones,
// so a store can be destroyed safely while pieces are still being hashed.
#pragma once

#include <asio/io_context.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "net/sha1.hpp"
#include "storage/arena.hpp"

namespace ph::storage {

class Hasher {
 public:
  using ClientId = std::uint32_t;

  // workers == 0 means default_workers(): one less than the cores, at least one.
  explicit Hasher(asio::io_context& io, unsigned workers = 0);
  ~Hasher();  // drops queued jobs and joins the workers; destroy it before the io_context
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  static unsigned default_workers();
  unsigned workers() const { return static_cast<unsigned>(threads_.size()); }
  asio::io_context& io() { return io_; }

  ClientId open_client();
  // Drops the client's queued jobs and blocks until none of its jobs is running. Call from the io thread only.
  void close_client(ClientId client);

  // Runs work() on a worker. work must post its own result to io() if it has one.
  void run(ClientId client, std::function<void()> work);
  // Hashes the (pinned) piece on a worker and posts done(ok) to the io_context. The caller keeps the piece pinned
  // and unchanged until done runs.
  void verify(ClientId client, PieceBytes bytes, Sha1Digest expected, std::function<void(bool ok)> done);

  // SHA-1 of a piece, on the calling thread (one EVP context per thread, reused).
  static Sha1Digest digest(const PieceBytes& bytes);

  std::size_t queued() const;

 private:
  static constexpr ClientId kIdle = 0xffffffffu;
  struct Job {
    ClientId client;
    std::function<void()> work;
  };
  void worker_main(std::size_t index);

  asio::io_context& io_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<Job> queue_;
  std::vector<ClientId> running_;  // per worker: the client whose job it runs, or kIdle
  ClientId next_client_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ph::storage
