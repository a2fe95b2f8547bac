/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModalityOrganClassifier.h"

#include "Checks.h"
#include "agcl/PretrainingMode.h"

#include <torch/torch.h>

namespace agcl {

ModalityOrganClassifierImpl::ModalityOrganClassifierImpl(ModalityOrganClassifierOptions options)
  : m_Options(options)
{
  detail::Require(options.in_features() > 0 && options.modalities() > 0 && options.organs() > 0,
                  "ModalityOrganClassifier",
                  "in_features, modalities and organs must be positive");
  m_Linear =
    register_module("linear", torch::nn::Linear(options.in_features(), options.modalities() * options.organs()));
}

torch::Tensor
ModalityOrganClassifierImpl::forward(const torch::Tensor & representation)
{
  detail::RequireFloating(representation,
                          2,
                          "ModalityOrganClassifier",
                          "representation",
                          "[N, " + std::to_string(m_Options.in_features()) + "]");
  detail::Require(representation.size(1) == m_Options.in_features(),
                  "ModalityOrganClassifier",
                  "representation has shape " + detail::ShapeText(representation) + "; expected [N, " +
                    std::to_string(m_Options.in_features()) + "]");
  return m_Linear->forward(representation);
}

torch::Tensor
ModalityOrganClassifierImpl::Loss(const torch::Tensor & logits,
                                  const torch::Tensor & modality,
                                  const torch::Tensor & organ) const
{
  detail::Require(modality.defined() && modality.dim() == 1 && logits.dim() == 2 && modality.size(0) == logits.size(0),
                  "ModalityOrganClassifier::Loss",
                  "expected logits [N, M*O] and modality [N], got " + detail::ShapeText(logits) + " and " +
                    detail::ShapeText(modality));
  detail::Require(modality.max().item<int64_t>() < m_Options.modalities(),
                  "ModalityOrganClassifier::Loss",
                  "modality ids must lie in 0.." + std::to_string(m_Options.modalities() - 1));
  const torch::Tensor target = ModalityOrganClass(modality, organ, m_Options.organs());
  return torch::nn::functional::cross_entropy(
    logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat), target);
}

} // namespace agcl
