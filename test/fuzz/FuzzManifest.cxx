/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Fuzz target: a cohort manifest CSV (agcl::ReadManifest, as the trainer and the commands read
// it). Refusals are ManifestError; anything else is a finding. Every row returned must have the
// required values.

#include "FuzzInput.h"

#include "agcl/Manifest.h"

#include <cstdlib>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string path = agcl::fuzz::AsFile(data, size, ".csv");
  try
  {
    for (const auto & row : agcl::ReadManifest(path, { "subject", "image", "modality" }, "train", { "label" }))
      if (row.subject.empty() || row.image.empty() || row.modality.empty() || row.split != "train")
        std::abort(); // a row without a required value, or of another split
  }
  catch (const agcl::ManifestError &)
  {
  }
  return 0;
}
