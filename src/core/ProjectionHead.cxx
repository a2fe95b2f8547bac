/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ProjectionHead.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

ProjectionHeadImpl::ProjectionHeadImpl(ProjectionHeadOptions options)
  : m_Options(options)
{
  if (m_Options.hidden_features() == 0)
  {
    m_Options.hidden_features(m_Options.in_features());
  }
  detail::Require(m_Options.in_features() > 0 && m_Options.hidden_features() > 0 && m_Options.out_features() > 0,
                  "ProjectionHead",
                  "feature sizes must be positive");
  m_Hidden = register_module("hidden", torch::nn::Linear(m_Options.in_features(), m_Options.hidden_features()));
  m_Output = register_module("output", torch::nn::Linear(m_Options.hidden_features(), m_Options.out_features()));
}

torch::Tensor
ProjectionHeadImpl::forward(const torch::Tensor & representation)
{
  const std::string expected = "[N, " + std::to_string(m_Options.in_features()) + "]";
  detail::RequireFloating(representation, 2, "ProjectionHead", "representation", expected);
  detail::Require(representation.size(1) == m_Options.in_features(),
                  "ProjectionHead",
                  "representation has shape " + detail::ShapeText(representation) + "; expected " + expected);
  return torch::nn::functional::normalize(m_Output(torch::relu(m_Hidden(representation))),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

} // namespace agcl
