/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ASPPDecoder.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

namespace {
namespace nn = torch::nn;

/** 3x3 or 1x1 convolution (optionally atrous) - BatchNorm - ReLU. */
class ConvBnReluImpl : public nn::Module
{
public:
  ConvBnReluImpl(int64_t in, int64_t out, int64_t kernel, int64_t dilation = 1)
  {
    const int64_t padding = kernel == 1 ? 0 : dilation * (kernel / 2);
    conv = register_module(
      "conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(padding).dilation(dilation).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor
  forward(const torch::Tensor & x)
  {
    return torch::relu(bn(conv(x)));
  }
  nn::Conv2d      conv{ nullptr };
  nn::BatchNorm2d bn{ nullptr };
};
TORCH_MODULE(ConvBnRelu);

torch::Tensor
Resize(const torch::Tensor & x, std::vector<int64_t> size)
{
  return nn::functional::interpolate(
    x, nn::functional::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false));
}
} // namespace

ASPPDecoderImpl::ASPPDecoderImpl(ASPPDecoderOptions options)
  : m_Options(options)
{
  const int64_t c = options.channels();
  detail::Require(options.high_level_channels() > 0 && options.low_level_channels() > 0 && c > 0 &&
                    options.low_level_projection() > 0 && options.classes() >= 2,
                  "ASPPDecoder",
                  "channel counts must be positive and classes >= 2");
  detail::Require(options.stem_channels() >= 0, "ASPPDecoder", "stem_channels must be 0 or positive");
  m_Branches = register_module("branches", nn::ModuleList());
  m_Branches->push_back(nn::Sequential(ConvBnRelu(options.high_level_channels(), c, 1)));
  for (int64_t rate : options.rates())
  {
    detail::Require(rate > 0, "ASPPDecoder", "atrous rates must be positive");
    m_Branches->push_back(nn::Sequential(ConvBnRelu(options.high_level_channels(), c, 3, rate)));
  }
  m_Pooling = register_module(
    "pooling", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(options.high_level_channels(), c, 1)), nn::ReLU()));
  const int64_t branches = static_cast<int64_t>(options.rates().size()) + 2;
  m_Project =
    register_module("project", nn::Sequential(ConvBnRelu(branches * c, c, 1), nn::Dropout(options.dropout())));
  m_LowLevel = register_module(
    "low_level", nn::Sequential(ConvBnRelu(options.low_level_channels(), options.low_level_projection(), 1)));
  m_Refine = register_module("refine",
                             nn::Sequential(ConvBnRelu(c + options.low_level_projection(), c, 3),
                                            ConvBnRelu(c, c, 3),
                                            nn::Dropout(options.dropout() / 5.0)));
  int64_t classifierInput = c;
  if (options.stem_channels() > 0)
  {
    const int64_t projection = std::max<int64_t>(1, options.low_level_projection() / 2);
    classifierInput = std::max<int64_t>(1, c / 2);
    m_StemProjection =
      register_module("stem_projection", nn::Sequential(ConvBnRelu(options.stem_channels(), projection, 1)));
    m_RefineStem = register_module("refine_stem", nn::Sequential(ConvBnRelu(c + projection, classifierInput, 3)));
  }
  m_Classifier = register_module("classifier", nn::Conv2d(nn::Conv2dOptions(classifierInput, options.classes(), 1)));

  for (auto & module : modules(false))
  {
    if (auto * conv = module->as<nn::Conv2d>())
    {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
}

torch::Tensor
ASPPDecoderImpl::forward(const torch::Tensor & lowLevel,
                         const torch::Tensor & highLevel,
                         std::vector<int64_t>  outputSize,
                         const torch::Tensor & stem)
{
  const std::string where = "ASPPDecoder";
  if (outputSize.size() == 1)
  {
    outputSize.push_back(outputSize[0]);
  }
  detail::Require(outputSize.size() == 2 && outputSize[0] > 0 && outputSize[1] > 0 && outputSize[0] % 16 == 0 &&
                    outputSize[1] % 16 == 0,
                  where,
                  "output size must be P or {H, W} with multiples of 16");
  const int64_t     h = outputSize[0], w = outputSize[1];
  const std::string lowExpected = "[N, " + std::to_string(m_Options.low_level_channels()) + ", " +
                                  std::to_string(h / 4) + ", " + std::to_string(w / 4) + "]";
  detail::RequireFloating(lowLevel, 4, where, "low_level", lowExpected);
  detail::Require(lowLevel.size(1) == m_Options.low_level_channels() && lowLevel.size(2) == h / 4 &&
                    lowLevel.size(3) == w / 4,
                  where,
                  "low_level has shape " + detail::ShapeText(lowLevel) + "; expected " + lowExpected);
  detail::RequireFloating(
    highLevel, 4, where, "high_level", "[N, " + std::to_string(m_Options.high_level_channels()) + ", h, w]");
  detail::Require(highLevel.size(0) == lowLevel.size(0) && highLevel.size(1) == m_Options.high_level_channels(),
                  where,
                  "high_level has shape " + detail::ShapeText(highLevel) + "; expected [" +
                    std::to_string(lowLevel.size(0)) + ", " + std::to_string(m_Options.high_level_channels()) +
                    ", h, w]");

  std::vector<torch::Tensor> pyramid;
  for (const auto & branch : *m_Branches)
  {
    pyramid.push_back(branch->as<nn::Sequential>()->forward(highLevel));
  }
  const torch::Tensor pooled = m_Pooling->forward(torch::adaptive_avg_pool2d(highLevel, { 1, 1 }));
  pyramid.push_back(pooled.expand({ -1, -1, highLevel.size(2), highLevel.size(3) }));
  torch::Tensor x = m_Project->forward(torch::cat(pyramid, 1));
  x = Resize(x, { lowLevel.size(2), lowLevel.size(3) });
  x = m_Refine->forward(torch::cat({ x, m_LowLevel->forward(lowLevel) }, 1));
  if (UsesStem())
  {
    const std::string stemExpected = "[" + std::to_string(lowLevel.size(0)) + ", " +
                                     std::to_string(m_Options.stem_channels()) + ", " + std::to_string(h / 2) + ", " +
                                     std::to_string(w / 2) + "]";
    detail::RequireFloating(stem, 4, where, "stem", stemExpected);
    detail::Require(stem.size(0) == lowLevel.size(0) && stem.size(1) == m_Options.stem_channels() &&
                      stem.size(2) == h / 2 && stem.size(3) == w / 2,
                    where,
                    "stem has shape " + detail::ShapeText(stem) + "; expected " + stemExpected);
    x = Resize(x, { h / 2, w / 2 });
    x = m_RefineStem->forward(torch::cat({ x, m_StemProjection->forward(stem) }, 1));
  }
  return Resize(m_Classifier(x), { h, w });
}

torch::Tensor
ASPPDecoderImpl::OrganProbability(const torch::Tensor & logits)
{
  detail::RequireFloating(logits, 4, "ASPPDecoder::OrganProbability", "logits", "[N, 2, H, W]");
  return torch::softmax(logits.to(torch::kFloat), 1).slice(1, 1, 2);
}

} // namespace agcl
