/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Fuzz target: an evaluation CSV as agcl compare reads it (apps/agcl/EvaluationCsv.h). Refusals
// are InputError; anything else is a finding. Every Dice accepted must be finite.

#include "FuzzInput.h"

#include "EvaluationCsv.h"

#include <cmath>
#include <cstdlib>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string path = agcl::fuzz::AsFile(data, size, ".csv");
  try
  {
    const agcl::cli::Evaluation evaluation = agcl::cli::ReadEvaluation(path);
    for (const auto & entry : evaluation.dice)
      for (const auto & volume : entry.second)
        if (!std::isfinite(volume.second))
          std::abort();
  }
  catch (const agcl::cli::InputError &)
  {
  }
  return 0;
}
