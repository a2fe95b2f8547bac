/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "Checks.h"

#include <torch/torch.h>

namespace agcl::detail {

void
RequireFinite(const at::Tensor & t, const std::string & where, const std::string & name)
{
  const bool finite = torch::isfinite(t.detach()).all().item<bool>();
  Require(finite, where, name + " contains NaN or infinite values");
}

} // namespace agcl::detail
