/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PretrainingMode.h"

#include "Checks.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>

namespace agcl {

namespace {
std::string
Lower(std::string text)
{
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}
} // namespace

bool
IsEndToEndAlias(const std::string & text)
{
  const std::string lower = Lower(text);
  return lower == "none" || lower == "supervised";
}

PretrainingMode
ParsePretrainingMode(const std::string & text)
{
  const std::string lower = Lower(text);
  if (lower == "agcl")
    return PretrainingMode::AGCL;
  if (lower == "supcon")
    return PretrainingMode::SupCon;
  if (lower == "sscl")
    return PretrainingMode::SSCL;
  if (lower == "ce")
    return PretrainingMode::CE;
  if (lower == "random" || IsEndToEndAlias(lower))
    return PretrainingMode::Random;
  throw std::invalid_argument("pre-training mode '" + text +
                              "': expected agcl, supcon, sscl, ce or random (none, supervised: random, fine-tuned)");
}

std::string
ToString(PretrainingMode mode)
{
  switch (mode)
  {
    case PretrainingMode::AGCL:
      return "agcl";
    case PretrainingMode::SupCon:
      return "supcon";
    case PretrainingMode::SSCL:
      return "sscl";
    case PretrainingMode::CE:
      return "ce";
    case PretrainingMode::Random:
      return "random";
  }
  return "unknown";
}

bool
IsContrastive(PretrainingMode mode)
{
  return mode == PretrainingMode::AGCL || mode == PretrainingMode::SupCon || mode == PretrainingMode::SSCL;
}

namespace {
void
CheckMetadata(const at::Tensor & modality, const at::Tensor & organ, int64_t numberOfOrgans, const std::string & where)
{
  detail::Require(numberOfOrgans > 0, where, "numberOfOrgans must be positive, got " + std::to_string(numberOfOrgans));
  detail::Require(modality.defined() && modality.dim() == 1 && modality.size(0) > 0,
                  where,
                  "modality has shape " + detail::ShapeText(modality) + "; expected [N] with N > 0");
  detail::Require(organ.defined() && organ.dim() == 1 && organ.size(0) == modality.size(0),
                  where,
                  "organ has shape " + detail::ShapeText(organ) + "; expected [" + std::to_string(modality.size(0)) +
                    "] like modality");
  detail::Require(at::isIntegralType(modality.scalar_type(), false) && at::isIntegralType(organ.scalar_type(), false),
                  where,
                  "modality and organ must be integer tensors");
  detail::Require(modality.min().item<int64_t>() >= 0, where, "modality ids must be >= 0");
  detail::Require(organ.min().item<int64_t>() >= 0 && organ.max().item<int64_t>() < numberOfOrgans,
                  where,
                  "organ ids must lie in 0.." + std::to_string(numberOfOrgans - 1));
}
} // namespace

at::Tensor
ModalityOrganClass(const at::Tensor & modality, const at::Tensor & organ, int64_t numberOfOrgans)
{
  CheckMetadata(modality, organ, numberOfOrgans, "ModalityOrganClass");
  return modality.to(torch::kLong) * numberOfOrgans + organ.to(torch::kLong);
}

at::Tensor
ContrastiveLabels(PretrainingMode mode, const at::Tensor & modality, const at::Tensor & organ, int64_t numberOfOrgans)
{
  const std::string where = "ContrastiveLabels";
  CheckMetadata(modality, organ, numberOfOrgans, where);
  at::Tensor perPatch;
  switch (mode)
  {
    case PretrainingMode::AGCL:
      perPatch = modality.to(torch::kLong) * numberOfOrgans + organ.to(torch::kLong);
      break;
    case PretrainingMode::SupCon:
      perPatch = organ.to(torch::kLong);
      break;
    case PretrainingMode::SSCL:
      perPatch = torch::arange(modality.size(0), torch::TensorOptions().dtype(torch::kLong).device(modality.device()));
      break;
    default:
      throw std::invalid_argument(where + ": mode '" + ToString(mode) +
                                  "' is not contrastive; expected agcl, supcon or sscl");
  }
  return torch::cat({ perPatch, perPatch });
}

} // namespace agcl
