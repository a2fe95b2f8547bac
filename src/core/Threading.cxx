/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Threading.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace agcl
{

namespace
{
std::mutex & ThreadsMutex()
{
  static std::mutex mutex;
  return mutex;
}

bool g_Configured = false;

int
ThreadsFromEnvironment()
{
  const char * value = std::getenv(kThreadsEnvironmentVariable);
  if (value == nullptr || *value == '\0')
  {
    return 0;
  }
  char * end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || parsed <= 0 || parsed > 4096)
  {
    throw std::invalid_argument(std::string(kThreadsEnvironmentVariable) + "='" + value +
                                "': expected a positive integer thread count");
  }
  return static_cast<int>(parsed);
}
} // namespace

int
ConfigureThreads(int requested)
{
  if (requested < 0)
  {
    throw std::invalid_argument("agcl::ConfigureThreads: thread count must be positive, got " +
                                std::to_string(requested));
  }
  std::lock_guard<std::mutex> lock(ThreadsMutex());
  if (requested == 0 && g_Configured)
  {
    return at::get_num_threads();
  }
  int threads = requested;
  if (threads == 0)
  {
    threads = ThreadsFromEnvironment();
  }
  if (threads == 0)
  {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0)
    {
      threads = 1;
    }
  }
  at::set_num_threads(threads);
  g_Configured = true;
  return at::get_num_threads();
}

int
CurrentThreads()
{
  return at::get_num_threads();
}

} // namespace agcl
