/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/DiceLoss.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

DiceLossImpl::DiceLossImpl(DiceLossOptions options)
  : m_Options(options)
{
  detail::Require(m_Options.smooth() >= 0, "DiceLoss", "smooth must be >= 0");
}

torch::Tensor
DiceLossImpl::forward(const torch::Tensor & logits, const torch::Tensor & target)
{
  const std::string where = "DiceLoss";
  detail::Require(logits.defined() && logits.dim() >= 3,
                  where,
                  "logits has shape " + detail::ShapeText(logits) + "; expected [N, C, *spatial]");
  detail::Require(at::isFloatingType(logits.scalar_type()), where, "logits must be floating point");
  const int64_t channels = logits.size(1);
  detail::Require(channels >= 2, where, "logits has " + std::to_string(channels) + " channels; expected at least 2");
  std::vector<int64_t> expected = logits.sizes().vec();
  expected.erase(expected.begin() + 1);
  detail::Require(target.defined() && target.sizes().vec() == expected,
                  where,
                  "target has shape " + detail::ShapeText(target) + "; expected " +
                    detail::ShapeText(torch::empty(expected, torch::kMeta)) + " (logits without the channel axis)");
  detail::Require(
    at::isIntegralType(target.scalar_type(), /*includeBool=*/true), where, "target must hold integer class ids");
  detail::RequireFinite(logits, where, "logits");
  const auto targetMin = target.min().item<int64_t>();
  const auto targetMax = target.max().item<int64_t>();
  detail::Require(targetMin >= -1 && targetMax < channels,
                  where,
                  "target ids must lie in 0.." + std::to_string(channels - 1) + " (-1: ignored), got " +
                    std::to_string(targetMin) + ".." + std::to_string(targetMax));

  torch::Tensor       scores = logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat);
  const int64_t       n = logits.size(0);
  torch::Tensor       probability = torch::softmax(scores, 1).reshape({ n, channels, -1 });
  const torch::Tensor ids = target.to(torch::kLong).reshape({ n, -1 });
  // one_hot gives [N, *spatial, C]: move C next to N.
  torch::Tensor oneHot = torch::one_hot(ids.clamp_min(0), channels).permute({ 0, 2, 1 }).to(probability.dtype());
  if (targetMin < 0) // ignored pixels (-1) count in neither the prediction nor the target
  {
    const torch::Tensor valid = ids.ge(0).unsqueeze(1).to(probability.dtype());
    probability = probability * valid;
    oneHot = oneHot * valid;
  }
  const torch::Tensor intersection = (probability * oneHot).sum(2);
  const torch::Tensor denominator = probability.sum(2) + oneHot.sum(2);
  const double        smooth = m_Options.smooth();
  const torch::Tensor dice = (2.0 * intersection + smooth) / (denominator + smooth);
  return 1.0 - dice.mean();
}

} // namespace agcl
