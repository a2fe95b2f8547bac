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

namespace agcl {

namespace {
std::mutex &
ThreadsMutex()
{
  static std::mutex mutex;
  return mutex;
}

bool g_Configured = false;

} // namespace

int
ResolveThreadCount(int requested, const char * environmentValue, int cores)
{
  if (requested < 0)
  {
    throw std::invalid_argument("thread count must be positive, got " + std::to_string(requested));
  }
  if (requested > 0)
  {
    return requested;
  }
  if (environmentValue != nullptr && *environmentValue != '\0')
  {
    char *     end = nullptr;
    const long parsed = std::strtol(environmentValue, &end, 10);
    if (end == environmentValue || *end != '\0' || parsed <= 0 || parsed > 4096)
    {
      throw std::invalid_argument(std::string(kThreadsEnvironmentVariable) + "='" + environmentValue +
                                  "': expected a positive integer thread count (1..4096)");
    }
    return static_cast<int>(parsed);
  }
  return cores > 0 ? cores : 1;
}

int
ConfigureThreads(int requested)
{
  std::lock_guard<std::mutex> lock(ThreadsMutex());
  if (requested == 0 && g_Configured)
  {
    return at::get_num_threads();
  }
  const int threads = ResolveThreadCount(
    requested, std::getenv(kThreadsEnvironmentVariable), static_cast<int>(std::thread::hardware_concurrency()));
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
