/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_Subcommands_h
#define agcl_apps_Subcommands_h

// Each subcommand lives in its own file (apps/agcl/Command*.cxx) and registers
// itself on the main app through one function declared here. When the user picks
// it, its CLI11 callback stores the work to run in `runner`; main() runs it and
// maps exceptions to exit codes.

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace agcl::cli {

/** Exit codes of the agcl tool. */
enum ExitCode : int
{
  kSuccess = 0,
  kBadInput = 1,       ///< bad usage, bad option value, unreadable or invalid input file
  kRuntimeFailure = 2, ///< anything that failed while running on valid input
};

/** Thrown for bad usage or input (exit code 1); the message names the file or option and what was expected. */
class InputError : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

using Runner = std::function<int()>;

void
RegisterInfo(CLI::App & app, Runner & runner);
void
RegisterInspect(CLI::App & app, Runner & runner);
void
RegisterPhantom(CLI::App & app, Runner & runner);
void
RegisterSegment(CLI::App & app, Runner & runner);
void
RegisterEvaluate(CLI::App & app, Runner & runner);
void
RegisterCompare(CLI::App & app, Runner & runner);
void
RegisterOverlay(CLI::App & app, Runner & runner);
void
RegisterTrain(CLI::App & app, Runner & runner);
void
RegisterEmbed(CLI::App & app, Runner & runner);
void
RegisterCalibrate(CLI::App & app, Runner & runner);
void
RegisterScenes(CLI::App & app, Runner & runner);
void
RegisterVocManifest(CLI::App & app, Runner & runner);

} // namespace agcl::cli

#endif
