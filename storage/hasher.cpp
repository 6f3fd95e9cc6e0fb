// Hasher: a mutex + condition-variable job queue feeding a fixed set of worker threads (see hasher.hpp).
#include "storage/hasher.hpp"

#include <asio/post.hpp>

#include <algorithm>

namespace ph::storage {

unsigned Hasher::default_workers() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 1 ? cores - 1 : 1;
}

Hasher::Hasher(asio::io_context& io, unsigned workers) : io_(io) {
  if (workers == 0) workers = default_workers();
  running_.assign(workers, kIdle);
  threads_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker_main(i); });
}

Hasher::~Hasher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    queue_.clear();
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

Hasher::ClientId Hasher::open_client() {
  std::lock_guard lock(mutex_);
  return next_client_++;
}

void Hasher::close_client(ClientId client) {
  std::unique_lock lock(mutex_);
  std::erase_if(queue_, [client](const Job& j) { return j.client == client; });
  idle_cv_.wait(lock, [&] { return std::find(running_.begin(), running_.end(), client) == running_.end(); });
}

void Hasher::run(ClientId client, std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    queue_.push_back(Job{client, std::move(work)});
  }
  work_cv_.notify_one();
}

void Hasher::verify(ClientId client, PieceBytes bytes, Sha1Digest expected, std::function<void(bool ok)> done) {
  run(client, [this, bytes, expected, done = std::move(done)]() mutable {
    const bool ok = digest(bytes) == expected;
    asio::post(io_, [done = std::move(done), ok] { done(ok); });
  });
}

Sha1Digest Hasher::digest(const PieceBytes& bytes) {
  thread_local Sha1 sha;
  for (BlockIndex b = 0; b < bytes.block_count(); ++b) sha.update(bytes.block(b));
  return sha.finish();
}

std::size_t Hasher::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Hasher::worker_main(std::size_t index) {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    running_[index] = job.client;
    lock.unlock();
    job.work();
    job.work = nullptr;  // destroy captures outside the lock, before reporting idle
    lock.lock();
    running_[index] = kIdle;
    idle_cv_.notify_all();
  }
}

}  // namespace ph::storage
