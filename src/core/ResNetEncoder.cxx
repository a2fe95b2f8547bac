/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ResNetEncoder.h"

#include "Checks.h"

#include <torch/torch.h>

#include <map>

namespace agcl {

namespace {
namespace nn = torch::nn;

nn::Conv2d
Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t dilation = 1)
{
  const int64_t padding = kernel == 1 ? 0 : dilation * (kernel / 2);
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).dilation(dilation).bias(false));
}

/** The projection shortcut of a residual block (1x1 conv + BN), registered as "downsample" on
 *  `block` when the block changes the resolution or the width; empty otherwise. */
nn::Sequential
Shortcut(nn::Module & block, int64_t in, int64_t out, int64_t stride)
{
  if (stride == 1 && in == out)
  {
    return nullptr;
  }
  return block.register_module("downsample", nn::Sequential(Conv(in, out, 1, stride), nn::BatchNorm2d(out)));
}

/** Basic block (ResNet-18/34): 3x3 - 3x3, expansion 1. Dilation is allowed (torchvision's is not). */
class BasicBlockImpl : public nn::Module
{
public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, int64_t firstDilation, int64_t dilation)
  {
    conv1 = register_module("conv1", Conv(in, planes, 3, stride, firstDilation));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, 1, dilation));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    downsample = Shortcut(*this, in, planes * kExpansion, stride);
  }
  torch::Tensor
  forward(const torch::Tensor & x)
  {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d      conv1{ nullptr }, conv2{ nullptr };
  nn::BatchNorm2d bn1{ nullptr }, bn2{ nullptr };
  nn::Sequential  downsample{ nullptr };
};
TORCH_MODULE(BasicBlock);

/** Bottleneck block (ResNet-50/101): 1x1 - 3x3 (stride, dilation) - 1x1, expansion 4. */
class BottleneckImpl : public nn::Module
{
public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, int64_t firstDilation, int64_t /*dilation*/)
  {
    conv1 = register_module("conv1", Conv(in, planes, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, stride, firstDilation));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", Conv(planes, planes * kExpansion, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
    downsample = Shortcut(*this, in, planes * kExpansion, stride);
  }
  torch::Tensor
  forward(const torch::Tensor & x)
  {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = torch::relu(bn2(conv2(out)));
    out = bn3(conv3(out));
    return torch::relu(out + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d      conv1{ nullptr }, conv2{ nullptr }, conv3{ nullptr };
  nn::BatchNorm2d bn1{ nullptr }, bn2{ nullptr }, bn3{ nullptr };
  nn::Sequential  downsample{ nullptr };
};
TORCH_MODULE(Bottleneck);

struct LayerBuilder
{
  bool    bottleneck;
  int64_t inplanes;
  int64_t dilation{ 1 };

  // torchvision's _make_layer with replace_stride_with_dilation: a dilated stage keeps the
  // previous dilation in its first block and uses the new one in the rest.
  nn::Sequential
  Make(int64_t planes, int64_t blocks, int64_t stride, bool dilate)
  {
    const int64_t previousDilation = dilation;
    if (dilate)
    {
      dilation *= stride;
      stride = 1;
    }
    const int64_t  expansion = bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
    nn::Sequential layer;
    for (int64_t b = 0; b < blocks; ++b)
    {
      const int64_t s = b == 0 ? stride : 1;
      const int64_t first = b == 0 ? previousDilation : dilation;
      if (bottleneck)
        layer->push_back(Bottleneck(inplanes, planes, s, first, dilation));
      else
        layer->push_back(BasicBlock(inplanes, planes, s, first, dilation));
      inplanes = planes * expansion;
    }
    return layer;
  }
};
} // namespace

ResNetEncoderImpl::ResNetEncoderImpl(ResNetEncoderOptions options)
  : m_Options(options)
{
  const std::string    where = "ResNetEncoder";
  std::vector<int64_t> blocks;
  bool                 bottleneck = false;
  switch (options.depth())
  {
    case 18:
      blocks = { 2, 2, 2, 2 };
      break;
    case 34:
      blocks = { 3, 4, 6, 3 };
      break;
    case 50:
      blocks = { 3, 4, 6, 3 };
      bottleneck = true;
      break;
    case 101:
      blocks = { 3, 4, 23, 3 };
      bottleneck = true;
      break;
    default:
      throw std::invalid_argument(where + ": depth " + std::to_string(options.depth()) +
                                  "; expected 18, 34, 50 or 101");
  }
  detail::Require(options.in_channels() >= 1, where, "in_channels must be >= 1");
  detail::Require(options.base_width() >= 4 && options.base_width() % 4 == 0,
                  where,
                  "base_width " + std::to_string(options.base_width()) + "; expected a multiple of 4, >= 4");
  detail::Require(options.output_stride() == 8 || options.output_stride() == 16 || options.output_stride() == 32,
                  where,
                  "output_stride " + std::to_string(options.output_stride()) + "; expected 8, 16 or 32");
  m_Expansion = bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;

  const int64_t w = options.base_width();
  m_Conv1 = register_module("conv1", Conv(options.in_channels(), w, 7, 2));
  m_Bn1 = register_module("bn1", nn::BatchNorm2d(w));
  m_MaxPool = register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  LayerBuilder builder{ bottleneck, w };
  m_Layer1 = register_module("layer1", builder.Make(w, blocks[0], 1, false));
  m_Layer2 = register_module("layer2", builder.Make(2 * w, blocks[1], 2, false));
  m_Layer3 = register_module("layer3", builder.Make(4 * w, blocks[2], 2, options.output_stride() == 8));
  m_Layer4 = register_module("layer4", builder.Make(8 * w, blocks[3], 2, options.output_stride() <= 16));

  for (auto & module : modules(/*include_self=*/false))
  {
    if (auto * conv = module->as<nn::Conv2d>())
    {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
    else if (auto * bn = module->as<nn::BatchNorm2d>())
    {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

int64_t
ResNetEncoderImpl::LowLevelChannels() const
{
  return m_Options.base_width() * m_Expansion;
}

int64_t
ResNetEncoderImpl::HighLevelChannels() const
{
  return 8 * m_Options.base_width() * m_Expansion;
}

EncoderFeatures
ResNetEncoderImpl::forward(const torch::Tensor & input)
{
  const std::string where = "ResNetEncoder";
  const int64_t     multiple = std::max<int64_t>(16, m_Options.output_stride());
  const std::string expected =
    "[N, " + std::to_string(m_Options.in_channels()) + ", H, W] with H and W multiples of " + std::to_string(multiple);
  detail::RequireFloating(input, 4, where, "input", expected);
  detail::Require(input.size(1) == m_Options.in_channels() && input.size(2) > 0 && input.size(3) > 0 &&
                    input.size(2) % multiple == 0 && input.size(3) % multiple == 0,
                  where,
                  "input has shape " + detail::ShapeText(input) + "; expected " + expected);
  EncoderFeatures features;
  features.stem = torch::relu(m_Bn1(m_Conv1(input)));
  torch::Tensor x = m_MaxPool(features.stem);
  features.low_level = m_Layer1->forward(x);
  x = m_Layer2->forward(features.low_level);
  x = m_Layer3->forward(x);
  features.high_level = m_Layer4->forward(x);
  return features;
}

torch::Tensor
ResNetEncoderImpl::Pool(const torch::Tensor & highLevel)
{
  detail::RequireFloating(highLevel, 4, "ResNetEncoder::Pool", "highLevel", "[N, D, h, w]");
  return torch::nn::functional::normalize(highLevel.mean({ 2, 3 }),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor
ResNetEncoderImpl::Represent(const torch::Tensor & input)
{
  return Pool(forward(input).high_level);
}

void
ResNetEncoderImpl::SetFrozen(bool frozen)
{
  m_Frozen = frozen;
  for (auto & p : parameters())
  {
    p.requires_grad_(!frozen);
  }
  if (frozen)
  {
    torch::nn::Module::train(false);
  }
}

void
ResNetEncoderImpl::train(bool on)
{
  torch::nn::Module::train(on && !m_Frozen);
}

void
ResNetEncoderImpl::EstimateBatchNormStatistics(const std::vector<torch::Tensor> & batches)
{
  detail::Require(!batches.empty(), "ResNetEncoder::EstimateBatchNormStatistics", "no batches");
  const bool wasFrozen = m_Frozen, wasTraining = is_training();
  std::vector<std::pair<nn::BatchNorm2dImpl *, c10::optional<double>>> layers;
  for (auto & module : modules(/*include_self=*/false))
    if (auto * bn = module->as<nn::BatchNorm2d>())
    {
      layers.emplace_back(bn, bn->options.momentum());
      bn->options.momentum(c10::nullopt); // cumulative average over the batches
      bn->reset_running_stats();
    }
  m_Frozen = false;
  torch::nn::Module::train(true);
  {
    torch::NoGradGuard noGrad;
    for (const auto & batch : batches)
      forward(batch);
  }
  for (auto & [bn, momentum] : layers)
    bn->options.momentum(momentum);
  m_Frozen = wasFrozen;
  torch::nn::Module::train(wasTraining && !wasFrozen);
}

torch::Tensor
ResNetEncoderImpl::ExpandInputChannels(const torch::Tensor & weight, int64_t channels)
{
  detail::Require(weight.defined() && weight.dim() == 4 && weight.size(1) <= channels,
                  "ResNetEncoder",
                  "first-convolution weight " + detail::ShapeText(weight) + " cannot be expanded to " +
                    std::to_string(channels) + " input channels; expected [O, c <= " + std::to_string(channels) +
                    ", k, k]");
  torch::Tensor expanded = torch::zeros({ weight.size(0), channels, weight.size(2), weight.size(3) }, weight.options());
  expanded.slice(1, 0, weight.size(1)).copy_(weight);
  return expanded;
}

void
ResNetEncoderImpl::LoadParameters(const std::vector<std::pair<std::string, torch::Tensor>> & named)
{
  const std::string                    where = "ResNetEncoder::LoadParameters";
  std::map<std::string, torch::Tensor> source(named.begin(), named.end());
  torch::NoGradGuard                   noGrad;
  auto                                 assign = [&](const std::string & name, torch::Tensor & target) {
    auto it = source.find(name);
    detail::Require(it != source.end(), where, "checkpoint has no entry '" + name + "'");
    torch::Tensor value = it->second;
    if (name == "conv1.weight" && value.dim() == 4 && target.dim() == 4 && value.size(1) < target.size(1) &&
        value.size(0) == target.size(0) && value.size(2) == target.size(2) && value.size(3) == target.size(3))
    {
      value = ExpandInputChannels(value, target.size(1));
    }
    detail::Require(value.sizes() == target.sizes(),
                    where,
                    "entry '" + name + "' has shape " + detail::ShapeText(value) + "; expected " +
                      detail::ShapeText(target));
    target.copy_(value);
    source.erase(it);
  };
  for (auto & item : named_parameters(/*recurse=*/true))
  {
    assign(item.key(), item.value());
  }
  for (auto & item : named_buffers(/*recurse=*/true))
  {
    assign(item.key(), item.value());
  }
  if (!source.empty())
  {
    throw std::invalid_argument(where + ": checkpoint entry '" + source.begin()->first +
                                "' has no counterpart in this encoder (depth or width differ?)");
  }
}

} // namespace agcl
