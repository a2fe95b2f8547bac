/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ChannelNormalization.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

at::Tensor
NormalizeChannels(const at::Tensor & image, const ModelConfig & config, NormalizationWindow window)
{
  const std::string where = "NormalizeChannels";
  const int64_t     C = config.image_channels;
  detail::Require(image.defined() && image.dim() >= 1 && image.size(0) == C,
                  where,
                  "image has shape " + detail::ShapeText(image) + "; expected [" + std::to_string(C) +
                    ", ...] (the model's channels first)");
  const at::Tensor x = image.to(torch::kFloat);
  if (!config.channel_mean.empty())
  {
    // [C] statistics broadcast over the channel's pixels; computed in double, applied in float.
    std::vector<int64_t> shape(static_cast<size_t>(image.dim()), 1);
    shape[0] = C;
    const auto       options = torch::TensorOptions().dtype(torch::kDouble);
    const at::Tensor mean = torch::tensor(config.channel_mean, options).view(shape).to(x.device(), torch::kFloat);
    const at::Tensor scale =
      (1.0 / torch::tensor(config.channel_std, options)).view(shape).to(x.device(), torch::kFloat);
    return (x - mean) * scale;
  }
  const double low = window == NormalizationWindow::Coarse ? config.coarse_window_low : config.window_low;
  const double high = window == NormalizationWindow::Coarse ? config.coarse_window_high : config.window_high;
  return ((x - low) / (high - low)).clamp(0.0, 1.0);
}

} // namespace agcl
