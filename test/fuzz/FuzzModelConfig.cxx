/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Fuzz target: a model configuration JSON (`--config`, a bundle's config): agcl::ParseJson, then
// ModelConfig::FromJson and the parameter bound. An accepted configuration must survive the round
// trip FromJson(ToJson()) unchanged. Refusals are std::invalid_argument (JSON) or ModelBundleError
// (values); anything else is a finding.

#include "agcl/JsonInput.h"
#include "agcl/ModelBundle.h"
#include "agcl/ModelConfig.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  try
  {
    const nlohmann::json    json = agcl::ParseJson(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz");
    const agcl::ModelConfig config = agcl::ModelConfig::FromJson(json);
    (void)config.MinimumParameterCount();
    const nlohmann::json once = config.ToJson();
    if (agcl::ModelConfig::FromJson(once).ToJson() != once)
    {
      std::fprintf(stderr, "round trip changed the configuration: %s\n", once.dump().c_str());
      std::abort();
    }
  }
  catch (const std::invalid_argument &)
  {
  }
  catch (const agcl::ModelBundleError &)
  {
  }
  return 0;
}
