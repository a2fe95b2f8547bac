/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AGCLModel_h
#define agcl_AGCLModel_h

#include "agcl/ASPPDecoder.h"
#include "agcl/CoarseSegmentationNet.h"
#include "agcl/ModelBundle.h"
#include "agcl/ModelConfig.h"
#include "agcl/ResNetEncoder.h"

#include <c10/core/Device.h>

#include <string>

namespace agcl {

/** The three networks of an AGCL model and its configuration: what a `*.agcl` bundle holds
 *  and what inference needs. The bundle's tensors are named "coarse.*", "encoder.*" and
 *  "decoder.*" (the parameters and buffers of CoarseSegmentationNet, ResNetEncoder and
 *  ASPPDecoder built from the config).
 *
 *  Load validates the config (ModelConfig::FromJson) and then that every network tensor is
 *  present with the shape the config implies: a bundle whose weights do not match its
 *  declared organs, widths or depths is refused with a ModelBundleError naming the tensor. */
class AGCLModel
{
public:
  /** Randomly initialised networks for `config` (validated). */
  explicit AGCLModel(ModelConfig config = {});

  const ModelConfig &
  Config() const
  {
    return m_Config;
  }
  CoarseSegmentationNet &
  Coarse()
  {
    return m_Coarse;
  }
  ResNetEncoder &
  Encoder()
  {
    return m_Encoder;
  }
  ASPPDecoder &
  Decoder()
  {
    return m_Decoder;
  }

  ModelBundle
  ToBundle() const;
  void
  Save(const std::string & path) const;
  static AGCLModel
  FromBundle(const ModelBundle & bundle);
  static AGCLModel
  Load(const std::string & path);

  /** Runs the coarse network on a volume already resampled to the coarse spacing and
   *  window-normalised to 0..1: [D, H, W], or [C, D, H, W] with C = the config's image_channels
   *  (any size; padded internally to the network's size multiple with 0, D only when the network
   *  is not planar) -> the class of each voxel [D, H, W] uint8 on the CPU (0 background,
   *  i = organ i-1 of the config). Eval mode, no gradients, on `device`.
   *
   *  When D exceeds the config's coarse_window_slices W, the network runs on windows of W
   *  slices along D (memory bounded by W, not D): consecutive windows overlap by 2 H slices,
   *  H = W / 4, and each slice takes its class from the window where it lies at least H slices
   *  from a cut (the volume's own ends excepted). With instance normalisation the result then
   *  differs slightly from a whole-volume run. */
  at::Tensor
  PredictCoarseClasses(const at::Tensor & volume, const c10::Device & device);

  /** What the coarse stage gives the attention maps, from one run of the coarse network. */
  struct CoarsePrediction
  {
    at::Tensor classes; ///< [D, H, W] uint8, as PredictCoarseClasses
    /** [O, D, H, W] uint8: 1 where organ o's attention grows from (its "seed"): the voxels of
     *  class o + 1, and with the config's coarse_attention_probability p > 0 also every voxel
     *  whose softmax probability of organ o is at least p. */
    at::Tensor seeds;
    /** [O, D, H, W] uint8: the softmax probability of organ o, x 255 rounded (the fusion's
     *  coarse vote, ModelConfig::coarse_weight). */
    at::Tensor probabilities;
  };
  /** PredictCoarseClasses, the organs' attention seeds and their probabilities (same windows,
   *  same forward passes). */
  CoarsePrediction
  PredictCoarse(const at::Tensor & volume, const c10::Device & device);

private:
  ModelConfig           m_Config;
  CoarseSegmentationNet m_Coarse{ nullptr };
  ResNetEncoder         m_Encoder{ nullptr };
  ASPPDecoder           m_Decoder{ nullptr };
};

} // namespace agcl

#endif
