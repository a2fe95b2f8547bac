/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ResNetEncoder_h
#define agcl_ResNetEncoder_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <utility>
#include <vector>

namespace agcl {

struct ResNetEncoderOptions
{
  /** 18 or 34 (basic blocks), 50 or 101 (bottleneck blocks); the paper uses 50 and 101. */
  TORCH_ARG(int64_t, depth) = 50;
  /** Image + attention map = 2 (paper §III-A); more are allowed. */
  TORCH_ARG(int64_t, in_channels) = 2;
  /** Width of the first stage: 64 is the paper's ResNet; 16 or 32 make CPU-sized models. */
  TORCH_ARG(int64_t, base_width) = 64;
  /** 16 (DeepLabv3+: the last stage dilated instead of strided), 8 (last two dilated) or 32 (plain ResNet). */
  TORCH_ARG(int64_t, output_stride) = 16;
};

/** Encoder features for the decoder: stride-4 low-level ([N, LowLevelChannels(), H/4, W/4])
 *  and final ([N, HighLevelChannels(), H/os, W/os]) features, and the stride-2 stem (the first
 *  convolution's BatchNorm + ReLU output before max pooling, [N, StemChannels(), H/2, W/2]),
 *  which only a decoder with a stride-2 stage reads. */
struct EncoderFeatures
{
  torch::Tensor low_level;
  torch::Tensor high_level;
  torch::Tensor stem;
};

/** ResNet encoder of DeepLabv3+ (paper §III-A, encoder E).
 *
 *  forward: [N, in_channels, H, W] -> EncoderFeatures; H and W multiples of 16 (32 for output stride 32).
 *  Represent: the global-average-pooled, L2-normalised final features, [N, HighLevelChannels()]
 *  (2048-d for ResNet-50/101 at width 64: the paper's D_E).
 *
 *  Frozen (stage 2, SetFrozen(true)): no parameter requires a gradient and BatchNorm stays in
 *  eval mode (running statistics frozen) even when train() is called on a parent module.
 */
class ResNetEncoderImpl : public torch::nn::Module
{
public:
  explicit ResNetEncoderImpl(ResNetEncoderOptions options = {});

  EncoderFeatures
  forward(const torch::Tensor & input);

  /** [N, C, H, W] -> [N, HighLevelChannels()] unit vectors. */
  torch::Tensor
  Represent(const torch::Tensor & input);

  /** Global average pooling + L2 normalisation of high-level features [N, D, h, w] -> [N, D]. */
  static torch::Tensor
  Pool(const torch::Tensor & highLevel);

  int64_t
  StemChannels() const
  {
    return m_Options.base_width();
  }
  int64_t
  LowLevelChannels() const;
  int64_t
  HighLevelChannels() const;
  const ResNetEncoderOptions &
  options() const
  {
    return m_Options;
  }

  void
  SetFrozen(bool frozen);
  bool
  IsFrozen() const
  {
    return m_Frozen;
  }
  /** Keeps BatchNorm in eval mode while frozen. */
  void
  train(bool on = true) override;

  /** Re-estimates every BatchNorm layer's running mean and variance from `batches` (each
   *  [n, in_channels, H, W] on the module's device; forward passes only, no gradient): the
   *  statistics become the average over the batches of each batch's mean and unbiased variance
   *  (momentum-free, as PyTorch's BatchNorm with momentum None). No parameter changes; the
   *  module's frozen state and training mode are as before. Stage 2 does this for an encoder it
   *  keeps frozen, so that a randomly initialised or pre-trained encoder is used with the
   *  statistics of the patches it will see (paper's RI baseline, issue 16). */
  void
  EstimateBatchNormStatistics(const std::vector<torch::Tensor> & batches);

  /** Loads parameters and buffers by name (as named_parameters()/named_buffers() spell them).
   *  A checkpoint whose first convolution had FEWER input channels (e.g. an image-only encoder
   *  loaded into an image + attention encoder) is expanded with ExpandInputChannels. Missing,
   *  unexpected or mis-shaped entries throw std::invalid_argument naming them. */
  void
  LoadParameters(const std::vector<std::pair<std::string, torch::Tensor>> & named);

  /** First-convolution weight [O, c, k, k] -> [O, channels, k, k], channels >= c. The trained
   *  kernels are kept for the first c channels; the new channels' kernels start at ZERO, so the
   *  expanded encoder computes exactly the trained function at first (adding a channel cannot
   *  wreck it), while their gradients are non-zero, so training learns to use them. */
  static torch::Tensor
  ExpandInputChannels(const torch::Tensor & weight, int64_t channels);

private:
  ResNetEncoderOptions   m_Options;
  bool                   m_Frozen{ false };
  int64_t                m_Expansion{ 1 };
  torch::nn::Conv2d      m_Conv1{ nullptr };
  torch::nn::BatchNorm2d m_Bn1{ nullptr };
  torch::nn::MaxPool2d   m_MaxPool{ nullptr };
  torch::nn::Sequential  m_Layer1{ nullptr };
  torch::nn::Sequential  m_Layer2{ nullptr };
  torch::nn::Sequential  m_Layer3{ nullptr };
  torch::nn::Sequential  m_Layer4{ nullptr };
};
TORCH_MODULE(ResNetEncoder);

} // namespace agcl

#endif
