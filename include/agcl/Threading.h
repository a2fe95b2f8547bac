/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_Threading_h
#define agcl_Threading_h

namespace agcl {

/** Name of the environment variable that overrides LibTorch's intra-op thread count. */
constexpr const char * kThreadsEnvironmentVariable = "AGCL_NUM_THREADS";

/** Sets LibTorch's intra-op thread count once per process and returns it.
 *
 *  LibTorch starts with a single intra-op thread on some machines (seen on
 *  Debian 12's 1.13), so every entry point (CLI, filters, trainer) calls this.
 *  Precedence: a positive `requested` (e.g. the CLI's --threads) > the
 *  AGCL_NUM_THREADS environment variable > the machine's core count.
 *  The first call with an explicit request or the first call at all decides; later calls
 *  without a request return the value in force. A later explicit request changes it.
 *  An AGCL_NUM_THREADS that is not a positive integer throws std::invalid_argument.
 */
int
ConfigureThreads(int requested = 0);

/** The thread count ConfigureThreads would choose: `requested` if positive, else the
 *  value of `environmentValue` (AGCL_NUM_THREADS; null or empty = unset), else `cores`
 *  (at least 1). Throws std::invalid_argument for a negative request or an environment
 *  value that is not an integer in 1..4096. */
int
ResolveThreadCount(int requested, const char * environmentValue, int cores);

/** The intra-op thread count LibTorch uses now. */
int
CurrentThreads();

} // namespace agcl

#endif
