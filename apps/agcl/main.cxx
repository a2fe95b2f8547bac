/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl: command-line front end of AGCL for ITK.

#include "Subcommands.h"

#include "agcl/BuildInfo.h"
#include "agcl/Distributed.h"
#include "agcl/Threading.h"

#include "itkMacro.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <iostream>
#include <thread>

int
main(int argc, char ** argv)
{
  using namespace agcl::cli;
  CLI::App app{ "agcl: multi-organ segmentation of abdominal CT with attention-guided contrastive learning (AGCL)",
                "agcl" };
  app.set_version_flag("--version", "agcl " + agcl::Version());
  app.require_subcommand(1);
  int threads = 0;
  app
    .add_option(
      "--threads", threads, "LibTorch intra-op threads (default: $AGCL_NUM_THREADS, else the number of cores)")
    ->check(CLI::PositiveNumber);

  Runner runner;
  RegisterInfo(app, runner);
  RegisterInspect(app, runner);
  RegisterPhantom(app, runner);
  RegisterSegment(app, runner);
  RegisterEvaluate(app, runner);
  RegisterCompare(app, runner);
  RegisterOverlay(app, runner);
  RegisterTrain(app, runner);
  RegisterEmbed(app, runner);
  RegisterCalibrate(app, runner);
  RegisterScenes(app, runner);
  RegisterVocManifest(app, runner);

  try
  {
    app.parse(argc, argv);
  }
  catch (const CLI::ParseError & e)
  {
    // CLI11 reports an unknown subcommand only as "a subcommand is required": name it.
    const std::vector<std::string> rest = app.remaining();
    if (app.get_subcommands().empty() && !rest.empty() && !rest.front().empty() && rest.front()[0] != '-')
    {
      std::string known;
      for (const CLI::App * sub : app.get_subcommands({}))
      {
        known += (known.empty() ? "" : ", ") + sub->get_name();
      }
      std::cerr << "agcl: error: unknown subcommand '" << rest.front() << "'; expected one of: " << known
                << "\nRun with --help for more information." << std::endl;
      return kBadInput;
    }
    const int code = app.exit(e);
    return code == 0 ? kSuccess : kBadInput;
  }

  // One rank of a distributed job (torchrun, --nproc): its errors name the rank, and its
  // intra-op threads default to the machine's cores divided by the ranks on it.
  std::string who = "agcl";
  if (const char * rank = std::getenv("RANK"); rank && std::getenv("WORLD_SIZE"))
    who = std::string("agcl[rank ") + rank + "]";
  if (threads == 0 && std::getenv("AGCL_NUM_THREADS") == nullptr)
    if (const char * local = std::getenv("LOCAL_WORLD_SIZE"))
    {
      const int ranks = std::atoi(local);
      if (ranks > 1)
        threads = agcl::ThreadsPerRank(static_cast<int>(std::thread::hardware_concurrency()), ranks);
    }

  try
  {
    agcl::ConfigureThreads(threads);
    return runner ? runner() : kSuccess;
  }
  catch (const InputError & e)
  {
    std::cerr << who << ": error: " << e.what() << std::endl;
    return kBadInput;
  }
  catch (const std::invalid_argument & e)
  {
    std::cerr << who << ": error: " << e.what() << std::endl;
    return kBadInput;
  }
  catch (const itk::ExceptionObject & e)
  {
    std::cerr << who << ": failed: " << e.GetDescription() << std::endl;
    return kRuntimeFailure;
  }
  catch (const c10::Error & e)
  {
    std::cerr << who << ": failed (LibTorch): " << e.what_without_backtrace() << std::endl;
    return kRuntimeFailure;
  }
  catch (const std::exception & e)
  {
    std::cerr << who << ": failed: " << e.what() << std::endl;
    return kRuntimeFailure;
  }
}
