/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Fuzz target: a training checkpoint as a resume reads it: the bundle (ModelBundle::Load), where
// it stands (agcl::ReadCheckpointState) and its configuration (ModelConfig::FromJson). Refusals are
// ModelBundleError and std::invalid_argument; anything else is a finding. An accepted state must
// lie in the documented ranges.

#include "FuzzInput.h"

#include "agcl/CheckpointState.h"
#include "agcl/ModelBundle.h"
#include "agcl/ModelConfig.h"

#include <cstdlib>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string path = agcl::fuzz::AsFile(data, size, ".agcl");
  try
  {
    const agcl::ModelBundle     bundle = agcl::ModelBundle::Load(path);
    const agcl::CheckpointState state = agcl::ReadCheckpointState(bundle.config, path);
    if (state.stage < 0 || state.stage > 3 || state.step < 0 || !state.options.is_object())
      std::abort();
    (void)agcl::ModelConfig::FromJson(bundle.config);
  }
  catch (const agcl::ModelBundleError &)
  {
  }
  catch (const std::invalid_argument &)
  {
  }
  return 0;
}
