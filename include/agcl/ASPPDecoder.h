/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ASPPDecoder_h
#define agcl_ASPPDecoder_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace agcl {

struct ASPPDecoderOptions
{
  ASPPDecoderOptions(int64_t highLevelChannels, int64_t lowLevelChannels)
    : high_level_channels_(highLevelChannels)
    , low_level_channels_(lowLevelChannels)
  {}
  /** Channels of the encoder's final (stride-16) and stride-4 features. */
  TORCH_ARG(int64_t, high_level_channels);
  TORCH_ARG(int64_t, low_level_channels);
  /** ASPP and decoder width: 256 in DeepLabv3+ and the paper; fewer for CPU-sized models. */
  TORCH_ARG(int64_t, channels) = 256;
  /** Width of the 1x1 projection of the stride-4 features (48 in DeepLabv3+). */
  TORCH_ARG(int64_t, low_level_projection) = 48;
  /** Atrous rates of the three 3x3 branches at output stride 16. */
  TORCH_ARG(std::vector<int64_t>, rates) = std::vector<int64_t>{ 6, 12, 18 };
  /** Dropout after the ASPP projection (DeepLabv3+: 0.5); the decoder uses a tenth of it before the classifier. */
  TORCH_ARG(double, dropout) = 0.5;
  /** Output logits: 2 = (background, organ) for the binary organ patches of stage 2. */
  TORCH_ARG(int64_t, classes) = 2;
  /** Channels of the encoder's stride-2 stem features; 0 (default) = DeepLabv3+'s head, whose
   *  logits are at stride 4. When > 0, one more stage at stride 2 (ours, not the paper's): the
   *  stride-4 refinement upsampled x2, concatenated with a 1x1 projection of the stem features
   *  to max(1, low_level_projection / 2) channels, a 3x3 conv to max(1, channels / 2) channels,
   *  then the classifier. */
  TORCH_ARG(int64_t, stem_channels) = 0;
};

/** DeepLabv3+ decoder with atrous spatial pyramid pooling (paper §III-A, decoder D).
 *
 *  ASPP on the stride-16 features: a 1x1 conv, three 3x3 atrous convs (rates 6/12/18) and image
 *  pooling, concatenated and projected to `channels` (+ dropout); upsampled x4 to the stride-4
 *  features, concatenated with their 48-channel 1x1 projection, two 3x3 convs, a 1x1 classifier,
 *  upsampled to the patch size. With stem_channels > 0, the stride-2 stage described there comes
 *  before the classifier.
 *
 *  forward(low_level [N, Cl, P/4, P/4], high_level [N, Ch, P/16, P/16], patch size P (or H, W)
 *          [, stem [N, Cs, P/2, P/2], required when stem_channels > 0, ignored otherwise])
 *    -> logits [N, classes, H, W]. H and W must be multiples of 16.
 *  The image-pooling branch has no BatchNorm (a 1x1 map has no batch statistics when N = 1).
 */
class ASPPDecoderImpl : public torch::nn::Module
{
public:
  explicit ASPPDecoderImpl(ASPPDecoderOptions options);

  torch::Tensor
  forward(const torch::Tensor & lowLevel,
          const torch::Tensor & highLevel,
          std::vector<int64_t>  outputSize,
          const torch::Tensor & stem = {});

  /** Whether forward needs the encoder's stem features (stem_channels > 0). */
  bool
  UsesStem() const
  {
    return m_Options.stem_channels() > 0;
  }

  /** The organ probability used downstream: softmax channel 1, [N, 2, H, W] -> [N, 1, H, W]. */
  static torch::Tensor
  OrganProbability(const torch::Tensor & logits);

  const ASPPDecoderOptions &
  options() const
  {
    return m_Options;
  }

private:
  ASPPDecoderOptions    m_Options;
  torch::nn::ModuleList m_Branches{ nullptr };
  torch::nn::Sequential m_Pooling{ nullptr };
  torch::nn::Sequential m_Project{ nullptr };
  torch::nn::Sequential m_LowLevel{ nullptr };
  torch::nn::Sequential m_Refine{ nullptr };
  torch::nn::Sequential m_StemProjection{ nullptr };
  torch::nn::Sequential m_RefineStem{ nullptr };
  torch::nn::Conv2d     m_Classifier{ nullptr };
};
TORCH_MODULE(ASPPDecoder);

} // namespace agcl

#endif
