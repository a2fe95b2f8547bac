/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Fuzz target: a model file (*.agcl) as a user receives it: ModelBundle::Load, then the networks
// built from it (AGCLModel::FromBundle). Refusals are ModelBundleError; anything else (another
// exception, a crash, a sanitizer report, a timeout, memory beyond the limit) is a finding.

#include "FuzzInput.h"

#include "agcl/AGCLModel.h"
#include "agcl/ModelBundle.h"

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string path = agcl::fuzz::AsFile(data, size, ".agcl");
  try
  {
    const agcl::ModelBundle bundle = agcl::ModelBundle::Load(path);
    const agcl::AGCLModel   model = agcl::AGCLModel::FromBundle(bundle);
  }
  catch (const agcl::ModelBundleError &)
  {
  }
  return 0;
}
